"""What a study produced, as data: every trial with its config, stage timeline, levels, verdicts and outcome.

``results.json`` is the hand-off between the tuner and everything after it (reports, pytest, the Action, baseline
comparison), so it is a versioned schema (``SCHEMA_VERSION``) written and read only through these models. Failed
trials are results too: a config that ran out of memory is recorded with its reason and its logs, never dropped.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .atomic import replacing
from .compare import Comparison

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 2 added intervals and the ranking; a version-1 file reads with them empty

Outcome = Literal["feasible", "infeasible", "failed", "skipped"]
Scalar = bool | int | float | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stage(_Model):
    """One stage of a trial (launch, ready, warmup, bench:<level>, judge, teardown) and how it went."""

    name: str
    started: float  # seconds since the epoch
    ended: float
    ok: bool = True
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class SampleSet(_Model):
    """Per-request latencies of one level (successful requests), kept for intervals and regression tests."""

    ttft: list[float] = Field(default_factory=list)
    tpot: list[float] = Field(default_factory=list)
    e2e_latency: list[float] = Field(default_factory=list)
    output_tokens: list[int] = Field(default_factory=list)


class CheckRecord(_Model):
    metric: str
    bound: Literal["max", "min"]
    limit: float
    measured: float | None  # None when it could not be measured
    hard: bool
    passed: bool
    violation_rate: float | None = None


class IntervalRecord(_Model):
    """An estimate with its confidence interval (``autotuner.stats.Interval`` as data); None bounds: unknown."""

    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    n: int
    method: str


class LevelRecord(_Model):
    """One (scenario, concurrency) level of a trial: measured figures, SLO checks, or why it failed."""

    scenario: str
    concurrency: int
    feasible: bool
    failure: str | None = None
    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    run_duration: float | None = None
    output_throughput: float | None = None
    total_throughput: float | None = None
    requests_per_second: float | None = None
    stats: dict[str, float | None] = Field(default_factory=dict)  # e.g. "ttft.p90": 0.41 (seconds)
    checks: list[CheckRecord] = Field(default_factory=list)
    samples: SampleSet = Field(default_factory=SampleSet)
    raw_dir: str | None = None  # genai-bench's own files for this level
    # Per-request estimates with intervals, e.g. "output_throughput" (Little's law, beside genai-bench's figure
    # above) and "ttft.p90" for every SLO statistic.
    intervals: dict[str, IntervalRecord] = Field(default_factory=dict)


class ObjectiveRecord(_Model):
    name: str  # e.g. "maximize output_throughput"
    value: float | None
    level: str | None = None  # e.g. "D(64,64)@4"


class TrialRecord(_Model):
    number: int
    config: dict[str, Scalar]
    config_id: str
    config_hash: str
    baseline: bool = False
    outcome: Outcome
    reason: str = ""  # why infeasible / failed / skipped, in one line a person can act on
    failure_kind: str | None = None  # oom, invalid-argument, model-not-found, port-in-use, crash, timeout
    objectives: list[ObjectiveRecord] = Field(default_factory=list)
    levels: list[LevelRecord] = Field(default_factory=list)
    stages: list[Stage] = Field(default_factory=list)
    engine_log: str | None = None
    teardown_error: str | None = None  # recorded apart: a cleanup problem never changes the outcome
    repeat: int = 0  # 0 for the first measurement of a config, 1.. for re-measurements

    @property
    def objective(self) -> float | None:
        return self.objectives[0].value if self.objectives else None

    @property
    def met_slos(self) -> bool:
        """This measurement met the SLOs and has an objective value: what the ranking counts."""
        return self.outcome == "feasible" and self.objective is not None


class EstimateRecord(_Model):
    """One config's objective over all its measurements (first + repeats) with its interval."""

    config_hash: str
    config_id: str
    trials: list[int]  # trial numbers of its measurements, first one first
    values: list[float]
    mean: float
    interval: IntervalRecord
    p_value: float | None = None  # of "as good as the leader" (None for the leader)


class RankingRecord(_Model):
    """The named best and its tie-set: configs the measurements cannot tell apart from it (see autotuner.stats)."""

    best: str  # config hash of the recommended config (first of the tie-set after the tie-break)
    leader: str  # config hash with the best mean
    tie_set: list[str]  # config hashes, tie-break order, best first
    separated: bool  # the best is shown better than every other config
    confidence: float
    rule: str
    tie_break: str
    noise_cv: float | None = None  # the noise prior's level used: 7%, updated with the typical repeated config's spread
    estimates: list[EstimateRecord] = Field(default_factory=list)  # best mean first

    def estimate(self, config_hash: str) -> EstimateRecord | None:
        return next((e for e in self.estimates if e.config_hash == config_hash), None)


class Environment(_Model):
    """Where the numbers were measured: results from different hardware or engines are not comparable."""

    host: str
    cpu: str
    cpus: int
    memory_gib: float
    gpus: list[str] = Field(default_factory=list)
    python: str
    engine: str  # runtime + version or image
    genai_bench: str | None = None
    tool_version: str


class StudyResult(_Model):
    schema_version: int = SCHEMA_VERSION
    spec_name: str
    spec_file: str
    spec_digest: str
    study_name: str
    strategy: str
    started: str
    finished: str | None = None
    environment: Environment | None = None
    objectives: list[str]
    trials: list[TrialRecord] = Field(default_factory=list)
    best_trial: int | None = None  # TrialRecord.number of the best feasible trial
    baseline_trial: int | None = None
    best_command: str | None = None  # the best config's launch command, ready to copy
    ranking: RankingRecord | None = None  # the best with its tie-set and intervals (single-objective studies)
    notes: list[str] = Field(default_factory=list)  # e.g. "grid of 48 sampled down to 6 without bias"
    # Against main's baseline (``autotuner tune --baseline``): the regression verdict. Optional and additive, so
    # files without it (and older readers' files) stay schema version 2.
    comparison: Comparison | None = None

    def best(self) -> TrialRecord | None:
        return next((t for t in self.trials if t.number == self.best_trial), None)

    def baseline(self) -> TrialRecord | None:
        return next((t for t in self.trials if t.number == self.baseline_trial), None)

    def missed(self, config_hash: str) -> int:
        """How many measurements of a config did not meet the SLOs: a config counts while most of its measurements
        met them (``estimates.counts``), and the headline says when the best one missed some."""
        return sum(1 for t in self.trials if t.config_hash == config_hash and not t.met_slos)

    def write(self, path: Path) -> None:
        """Atomically (a reader never sees half a file), with NaN written as null (JSON has no NaN).

        A full disk or an interrupt leaves the previous ``results.json`` whole and no temporary file; the error
        names ``path`` (see ``autotuner.atomic``).

        Streamed, one trial at a time: the trials are turned into JSON data only as the encoder reaches each one
        (``default``), so rewriting results.json after every trial never holds a long study's trials as dicts
        all at once (that peak grew with every trial: ~11 KiB of RSS per trial in benchmarks/soak.py)."""
        rest = _finite(self.model_dump(mode="json", exclude={"trials"}))
        data = {name: self.trials if name == "trials" else rest[name] for name in type(self).model_fields}
        with replacing(path) as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=_trial_data)
            handle.write("\n")

    @classmethod
    def read(cls, path: Path) -> StudyResult:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"{path}: results schema version {version}, this tool reads {READABLE_VERSIONS}")
        data["schema_version"] = SCHEMA_VERSION
        return cls.model_validate(data)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _trial_data(value: Any) -> Any:
    """``json.dump``'s hook for what it cannot encode itself: a trial, as its JSON data (see ``StudyResult.write``)."""
    if isinstance(value, TrialRecord):
        return _finite(value.model_dump(mode="json"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
