"""Sample efficiency of the search strategies, replayed on a landscape measured for real.

Measuring a config of the embedded default takes 15-20 s, so comparing strategies over many seeds by measuring
is out of reach; and a synthetic landscape would only say how the strategies do on a shape we made up. So the
full grid of ``tuning_specs/smollm2-cpu.yaml`` (48 configs, plus the spec's baseline) was measured for real, with
the real engine and real genai-bench, in several passes, and stored as data in
``benchmarks/data/smollm2-cpu-landscape.json``. This script replays that landscape through the real study code
(:class:`autotuner.study.Study`: its samplers, its grid plan, its duplicate handling and its budget), with every
trial answered from the recording instead of launching anything, and reports for each strategy over 20 seeds how
many trials (the baseline trial counted) it needs to measure a config within 2% of the best feasible objective::

    python benchmarks/sample_efficiency.py                       # the table (about 10 s)
    python benchmarks/sample_efficiency.py --seeds 5 --budget 30
    python benchmarks/sample_efficiency.py record pass1/results.json pass2/results.json \
        [--include-v1 old-landscape.json] --load "..."          # re-record (each results.json is one pass)

The issue's target: ``auto`` needs at most 25% of the grid (median). The landscape's own spread is printed
first, because the target means little when many configs are within 2% of the best.

The landscape (version 2): every config holds all its measurements of the objective (``values``, None where a
pass found it infeasible) and their ``outcomes``. Its truth, what this table replays: a config is feasible when
most of its measurements were, and its objective is the median of its feasible values (``summarize`` says why:
a rule of "infeasible once, infeasible forever" and a mean did not settle as passes were added; the README gives
the figures under that old rule too). The spread of the repeated values is the measurement noise, which
``benchmarks/best_confidence.py`` replays (``Noise``: SLO misses as often as recorded, values around each config's
mean); this table answers every trial with the truth, noise-free, and racing off: it measures the search alone.
Version 1 files (one measurement per config, a few repeats beside) still read.

Replay seam: ``Study.run_trial`` (the trial pipeline by default) is given a function that looks the config up
in the landscape; the context's launcher and bench raise if anything tries to launch or benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from autotuner.launch.base import Deployment, Launcher, LaunchRequest  # noqa: E402
from autotuner.results import ObjectiveRecord, Outcome, StudyResult, TrialRecord  # noqa: E402
from autotuner.space import Config  # noqa: E402
from autotuner.study import Study, StudyOptions  # noqa: E402
from autotuner.trial import TrialContext  # noqa: E402
from autotuner.validation import LoadedSpec, load_spec  # noqa: E402

SPEC = REPO / "tuning_specs" / "smollm2-cpu.yaml"
DATA = REPO / "benchmarks" / "data" / "smollm2-cpu-landscape.json"
STRATEGIES = ("grid", "random", "tpe", "auto")  # nsga2 is for several objectives: this spec has one
TOLERANCE = 0.02  # "within 2% of the best feasible objective"
TARGET_SHARE = 0.25  # the target for auto: at most 25% of the grid (median)
SEEDS = 20
DATA_VERSION = 2  # what ``record`` writes
READABLE_VERSIONS = (1, 2)  # 1: one measurement per config (and a few repeats beside); 2: every measurement
FEASIBLE_RULE = "a config is feasible when most of its measurements were (a strict majority)"
OLD_RULE = "the old rule: infeasible if any measurement missed, else the mean"  # --old-rule, for comparison
OBJECTIVE_RULE = "a feasible config's objective is the median of its feasible values"

RunTrial = Callable[..., TrialRecord]


def met(value: float | None, outcome: str) -> bool:
    """Whether one recorded measurement met the SLOs (and so has an objective value)."""
    return outcome == "feasible" and value is not None


# ---------------------------------------------------------------------------------------------------- the landscape
@dataclass(frozen=True)
class Point:
    """One recorded config: what a replayed trial of it returns (``objective``, or a draw around it)."""

    config: dict[str, bool | int | float | str]
    hash: str
    outcome: Outcome
    objective: float | None  # output throughput under the SLOs (tokens/s), by OBJECTIVE_RULE; None: infeasible
    reason: str = ""
    baseline: bool = False
    values: tuple[float | None, ...] = ()  # every measurement, in recording order (None: infeasible or failed)
    outcomes: tuple[str, ...] = ()  # the outcome of each measurement
    passes: tuple[str, ...] = ()  # the recording pass of each measurement (version 2)

    @property
    def measurements(self) -> tuple[float, ...]:
        """The feasible values (the objective alone when the point was built without its values)."""
        known = tuple(v for v, o in zip(self.values, self.outcomes, strict=True) if met(v, o) and v is not None)
        if known:
            return known
        return (self.objective,) if self.objective is not None else ()


def summarize(values: Sequence[float | None], outcomes: Sequence[str]) -> tuple[Outcome, float | None, int | None]:
    """A config's outcome and objective from all its measurements, and the first measurement that missed.

    Why a majority and a median, not "infeasible once, infeasible" and a mean: the truth should settle as passes
    are added, and those did not. On this 2-core machine a two-thread config "collapses" now and then (3-40
    tok/s, often missing the SLOs) when something else takes a core; a rule that counts any miss (``OLD_RULE``)
    made more configs infeasible with every pass (``Landscape.infeasible_by_passes``: 1, 1, 6, 6, 9, 11, 12, 12,
    12, 12 over the ten passes), so the truth depended on how long one recorded. A majority settles. Among the
    feasible values a collapse is an outlier that moves a 5-value mean by ~15%, far more than the 2% tolerance;
    the median is what the config typically does. (``FEASIBLE_RULE``, ``OBJECTIVE_RULE``; the README shows the
    figures under the old rule too.)"""
    if len(values) != len(outcomes) or not values:
        raise ValueError(f"{len(values)} values but {len(outcomes)} outcomes")
    ok = [v for v, o in zip(values, outcomes, strict=True) if met(v, o) and v is not None]
    bad = next((i for i, (v, o) in enumerate(zip(values, outcomes, strict=True)) if not met(v, o)), None)
    if 2 * len(ok) <= len(values):
        assert bad is not None  # fewer than half feasible: some measurement missed
        outcome: Outcome = "failed" if outcomes[bad] == "failed" else "infeasible"
        return outcome, None, bad
    return "feasible", statistics.median(ok), bad


def summarize_old(values: Sequence[float | None], outcomes: Sequence[str]) -> tuple[Outcome, float | None]:
    """``OLD_RULE``: what the landscape's truth was before ``summarize``'s rule, kept to print its figures."""
    bad = next((o for v, o in zip(values, outcomes, strict=True) if not met(v, o)), None)
    if bad is not None:
        return ("failed" if bad == "failed" else "infeasible"), None
    return "feasible", math.fsum(v for v in values if v is not None) / len(values)


@dataclass(frozen=True)
class Landscape:
    """Every config a study of the spec can measure, with its recorded result, keyed by config hash."""

    points: dict[str, Point]
    grid_size: int  # configs of the spec's grid (the baseline may lie outside it)
    repeats: tuple[tuple[str, float | None, float | None], ...] = ()  # v1 only: (config id, in the grid, again)
    passes: tuple[str, ...] = ()  # v2: the recording passes, in order
    version: int = DATA_VERSION
    recorded_order: tuple[str, ...] = ()  # v2: the passes by the date they were recorded

    @classmethod
    def of(cls, points: Sequence[Point], grid_size: int) -> Landscape:
        return cls({p.hash: p for p in points}, grid_size)

    @classmethod
    def read(cls, path: Path) -> Landscape:
        try:
            return cls.read_data(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error

    @classmethod
    def read_data(cls, data: dict[str, Any]) -> Landscape:
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"landscape version {version}, this script reads {READABLE_VERSIONS}")
        if version == 1:
            return cls._read_v1(data)
        points = []
        for c in data["configs"]:
            values = tuple(None if v is None else float(v) for v in c["values"])
            outcomes = tuple(str(o) for o in c["outcomes"])
            outcome, objective, _bad = summarize(values, outcomes)
            stored = c.get("objective")
            if (
                outcome != c["outcome"]
                or (objective is None) != (stored is None)
                or (objective is not None and stored is not None and not math.isclose(objective, stored, rel_tol=1e-9))
            ):
                raise ValueError(f"{c['id']}: its outcome or objective does not follow from its values")
            points.append(
                Point(
                    config=c["config"],
                    hash=c["hash"],
                    outcome=outcome,
                    objective=objective,
                    reason=c.get("reason", ""),
                    baseline=c.get("baseline", False),
                    values=values,
                    outcomes=outcomes,
                    passes=tuple(str(name) for name in c.get("passes", ())),
                )
            )
        rows = data.get("passes", [])
        passes = tuple(str(p["name"]) for p in rows)
        by_date = tuple(str(p["name"]) for p in sorted(rows, key=lambda p: str(p.get("date") or "")))
        return cls({p.hash: p for p in points}, int(data["grid_size"]), (), passes, 2, by_date)

    @classmethod
    def _read_v1(cls, data: dict[str, Any]) -> Landscape:
        """Version 1: one measurement per config; the repeats stay beside it, as that file meant them."""
        points = [
            Point(
                config=c["config"],
                hash=c["hash"],
                outcome=c["outcome"],
                objective=c["objective"],
                reason=c.get("reason", ""),
                baseline=c.get("baseline", False),
                values=(c["objective"],),
                outcomes=(c["outcome"],),
            )
            for c in data["configs"]
        ]
        repeats = tuple((r["id"], r["objective_in_grid"], r["objective_again"]) for r in data.get("repeats", []))
        return cls({p.hash: p for p in points}, int(data["grid_size"]), repeats, ("v1",), 1)

    def feasible(self) -> list[Point]:
        return sorted(
            (p for p in self.points.values() if p.outcome == "feasible" and p.objective is not None),
            key=lambda p: -(p.objective or 0.0),
        )

    @property
    def best(self) -> float:
        feasible = self.feasible()
        if not feasible:
            raise ValueError("the landscape has no feasible config")
        return feasible[0].objective or 0.0

    def hits(self, tolerance: float = TOLERANCE) -> set[str]:
        """Hashes of the configs whose objective is within ``tolerance`` of the best (the best included)."""
        floor = self.best * (1.0 - tolerance)
        return {p.hash for p in self.feasible() if (p.objective or 0.0) >= floor}

    def under_old_rule(self) -> Landscape:
        """The same measurements judged by ``OLD_RULE`` (``--old-rule``)."""
        points = {}
        for h, p in self.points.items():
            outcome, objective = summarize_old(p.values, p.outcomes) if p.values else (p.outcome, p.objective)
            points[h] = dataclasses.replace(p, outcome=outcome, objective=objective)
        return dataclasses.replace(self, points=points)

    def infeasible_by_passes(self) -> list[tuple[int, int]]:
        """After the first k passes (in recording order): how many configs ``OLD_RULE`` and ``FEASIBLE_RULE``
        count infeasible. The old rule's count only grows with k; a rule for the truth should settle."""
        counts = []
        for k in range(1, len(self.recorded_order) + 1):
            seen = set(self.recorded_order[:k])
            old = new = 0
            for p in self.points.values():
                kept = [(v, o) for v, o, name in zip(p.values, p.outcomes, p.passes, strict=True) if name in seen]
                if kept:
                    values, outcomes = [v for v, _o in kept], [o for _v, o in kept]
                    old += summarize_old(values, outcomes)[0] != "feasible"
                    new += summarize(values, outcomes)[0] != "feasible"
            counts.append((old, new))
        return counts

    def flaky(self) -> list[Point]:
        """Configs feasible in some measurements and not in others (counted by ``FEASIBLE_RULE``)."""
        return [
            p for p in self.points.values() if len({met(v, o) for v, o in zip(p.values, p.outcomes, strict=True)}) > 1
        ]


# ---------------------------------------------------------------------------------------------------- the noise
def relative_residuals(landscape: Landscape) -> tuple[float, ...]:
    """The measurement noise of the landscape, as relative residuals pooled over configs measured more than once.

    A config's residual is ``(v - mean) / mean``, scaled by ``sqrt(n / (n - 1))``: with n values, residuals from
    their own mean are smaller than the noise by that factor (the mean has absorbed part of it), most of all for
    the two or three values a config has here. Only the feasible values of configs counted feasible contribute:
    a measurement that missed the SLOs has no objective, and a config infeasible in most passes sits where its
    throughput is not the ordinary noise around one mean. Relative, because the noise of throughput grows with
    it (a constant CV, the model ``autotuner.stats.repeats`` assumes too); pooled, because two or three values
    per config say little about any one config's noise, and the noise is the machine's more than the config's.
    """
    pooled: list[float] = []
    for point in sorted(landscape.feasible(), key=lambda p: p.hash):
        pooled.extend(scaled_residuals(point.measurements))
    return tuple(pooled)


def scaled_residuals(values: Sequence[float]) -> tuple[float, ...]:
    """One config's relative residuals, scaled as ``relative_residuals`` says (none from fewer than 2 values)."""
    n = len(values)
    mean = math.fsum(values) / n if n else 0.0
    if n < 2 or mean <= 0:
        return ()
    scale = math.sqrt(n / (n - 1))
    return tuple((v - mean) / mean * scale for v in values)


@dataclass(frozen=True)
class Measured:
    """What one replayed measurement of a config gives: its outcome, and its objective when feasible."""

    outcome: Outcome
    objective: float | None
    reason: str = ""


Draw = Callable[[Point, int], Measured]  # (a point, its repeat number) -> one measurement of it


@dataclass(frozen=True)
class Noise:
    """Replayed measurement noise: a config's measurement is its mean times ``1 + e``, ``e`` one of that config's
    own recorded relative residuals (the pooled ones for a config measured fewer than ``OWN_MIN`` times), drawn
    with a seed that is a function of (seed, config, repeat) alone.

    Keyed draws, not one random stream: two replays with the same seed (racing on and off, say) see the same
    value for the same config's k-th measurement however differently they order their trials, so comparing them
    compares the methods, not their luck. Resampling the recorded residuals (not a normal of their CV) keeps the
    noise's real shape: its skew and its outliers are what a single measurement gets wrong. Each config's own:
    noise differs between configs (on the CPU default a one-thread config repeats within ~6%, a two-thread one
    sometimes collapses to a tenth), and giving every config the pooled residuals would replay a machine where
    steady configs collapse and erratic ones never do.
    """

    residuals: tuple[float, ...]
    own: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)

    OWN_MIN: ClassVar[int] = 3  # a config's own residuals are its noise from this many measurements on

    @classmethod
    def of(cls, landscape: Landscape) -> Noise:
        own = {
            p.hash: scaled_residuals(p.measurements)
            for p in sorted(landscape.points.values(), key=lambda p: p.hash)
            if len(p.measurements) >= cls.OWN_MIN
        }
        return cls(relative_residuals(landscape), own)

    @property
    def cv(self) -> float:
        """The pooled coefficient of variation: the root mean square of the scaled residuals."""
        if not self.residuals:
            return 0.0
        return math.sqrt(math.fsum(r * r for r in self.residuals) / len(self.residuals))

    def factor(self, seed: int, config_hash: str, repeat: int) -> float:
        """``1 + e`` for this measurement (1 when nothing was measured twice: no noise known, none made up)."""
        pool = self.own.get(config_hash) or self.residuals
        if not pool:
            return 1.0
        return 1.0 + random.Random(f"{seed}/{config_hash}/{repeat}").choice(pool)

    @staticmethod
    def misses(point: Point, seed: int, repeat: int) -> bool:
        """Whether this measurement misses the SLOs (or fails): as often as the config's recorded ones did.

        Whatever the truth counts the config as: a config feasible in most passes still misses now and then, and
        one infeasible in most passes still meets the SLOs now and then; a study meets both."""
        missed = sum(1 for v, o in zip(point.values, point.outcomes, strict=True) if not met(v, o))
        return missed > 0 and random.Random(f"{seed}/{point.hash}/{repeat}/outcome").random() < missed / len(
            point.values
        )

    def draw(self, seed: int) -> Draw:
        """One seed's replayed measurements: an SLO miss as often as recorded; else a value around the config's
        mean, ``mean * (1 + e)``, never below zero. The mean, not the truth's median: the residuals are from it."""

        def measure(point: Point, repeat: int) -> Measured:
            known = point.measurements
            if self.misses(point, seed, repeat) or not known:  # not known: infeasible, built without its values
                failed = point.outcome == "failed" or "failed" in point.outcomes
                reason = point.reason or "missed the SLOs in the recording"
                return Measured("failed" if failed else "infeasible", None, reason)
            center = math.fsum(known) / len(known)
            return Measured("feasible", max(0.0, center * self.factor(seed, point.hash, repeat)))

        return measure


# ---------------------------------------------------------------------------------------------------- the replay
class _NoDeployment(Launcher):
    """The replay launches nothing: a launcher that is reached means the replay seam was bypassed."""

    kind = "replay"

    def start(self, request: LaunchRequest) -> Deployment:
        raise AssertionError(f"the replay must not launch anything (asked to start {request.name})")


def _no_bench(**_kwargs: Any) -> Any:
    raise AssertionError("the replay must not run a benchmark")


def replay_trial(
    landscape: Landscape, objective_name: str, log: list[TrialRecord], draw: Draw | None = None
) -> RunTrial:
    """A stand-in for ``autotuner.trial.run_trial``: the recorded outcome of the config, as a TrialRecord.

    Every record it hands out is also appended to ``log``: the order in which the study really measured configs,
    whatever order or numbering the study's own result uses (a baseline outside the space, say, has number -1).
    Without ``draw`` each config answers with the truth (``FEASIBLE_RULE``, ``OBJECTIVE_RULE``); with it, with
    one draw of its recorded measurements (``Noise.draw``).
    """

    def run(ctx: TrialContext, number: int, config: Config, *, baseline: bool = False, repeat: int = 0) -> TrialRecord:
        point = landscape.points.get(config.hash)
        if point is None:
            raise KeyError(f"{config.id} ({config.hash}) is not in the recorded landscape")
        measured = draw(point, repeat) if draw is not None else Measured(point.outcome, point.objective, point.reason)
        record = TrialRecord(
            number=number,
            config=config.as_dict(),
            config_id=config.id,
            config_hash=config.hash,
            baseline=baseline,
            outcome=measured.outcome,
            reason=measured.reason if measured.outcome != "feasible" else "",
            objectives=[ObjectiveRecord(name=objective_name, value=measured.objective)],
            repeat=repeat,
        )
        log.append(record)
        return record

    return run


def with_search(
    loaded: LoadedSpec, *, strategy: str, seed: int, max_trials: int | None, racing: bool = False
) -> LoadedSpec:
    """The spec with another strategy, seed and budget (the rest, space and baseline included, unchanged).

    Racing (repeats of the leaders after the search) is off unless asked: this table measures the search alone,
    how soon it first measures a near-best config, and racing would only take budget from it."""
    update = {"strategy": strategy, "seed": seed, "max_trials": max_trials}
    search = loaded.spec.search.model_copy(
        update={**update, "racing": loaded.spec.search.racing.model_copy(update={"enabled": racing})}
    )
    spec = loaded.spec.model_copy(update={"search": search})
    return dataclasses.replace(loaded, spec=spec)


@dataclass(frozen=True)
class Run:
    """One replayed study: what ``auto`` became, the configs measured in order, and the config it named best."""

    strategy: str
    resolved: str
    seed: int
    measured: list[TrialRecord]  # in the order the study measured them (repeats included, when racing)
    notes: list[str]
    best: str | None = None  # the hash of the study's final best (None: nothing feasible)


def replay(
    loaded: LoadedSpec,
    landscape: Landscape,
    *,
    strategy: str,
    seed: int,
    max_trials: int | None,
    racing: bool = False,
    draw: Draw | None = None,
) -> Run:
    """Run the real Study on the landscape; nothing is launched and nothing is written.

    Each config answers with the truth (its outcome and objective), or with ``draw``'s measurement (``Noise.draw``)."""
    spec = with_search(loaded, strategy=strategy, seed=seed, max_trials=max_trials, racing=racing)
    objective_name = str(spec.spec.objective[0])
    log: list[TrialRecord] = []
    with tempfile.TemporaryDirectory(prefix="replay-") as scratch:
        context = TrialContext(
            loaded=spec, run_id="replay", out_dir=Path(scratch), launcher=_NoDeployment(), bench=_no_bench
        )
        run_trial = replay_trial(landscape, objective_name, log, draw)
        study = Study(spec, context, StudyOptions(timeout=3600.0), run_trial=run_trial)
        result: StudyResult = study.run()
    best = result.ranking.best if result.ranking is not None else None
    if best is None:
        named = result.best()
        best = named.config_hash if named is not None else None
    return Run(strategy, study.strategy, seed, log, list(result.notes), best)


def trials_to_hit(run: Run, hits: set[str]) -> int | None:
    """1-based position of the first measured config within the tolerance (the baseline is trial 1); None: never."""
    for position, record in enumerate(run.measured, start=1):
        if record.config_hash in hits:
            return position
    return None


# ---------------------------------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Row:
    label: str
    resolved: str
    budget: int | None
    counts: list[int | None]  # per seed; None = not found within the budget

    def _filled(self) -> list[float]:
        """Misses count as infinitely many trials: they push the percentiles up, never down."""
        return sorted(math.inf if c is None else float(c) for c in self.counts)

    def quantile(self, q: float) -> float:
        values = self._filled()
        position = q * (len(values) - 1)
        low, high = math.floor(position), math.ceil(position)
        if values[low] == values[high]:
            return values[low]
        return values[low] + (values[high] - values[low]) * (position - low)

    def mean(self) -> float:
        """The mean, a miss counted as one trial past the budget (a floor: a miss may need many more)."""
        cap = float((self.budget or 0) + 1)
        return statistics.fmean(cap if c is None else float(c) for c in self.counts)

    @property
    def misses(self) -> int:
        return sum(1 for c in self.counts if c is None)


def efficiency(
    loaded: LoadedSpec,
    landscape: Landscape,
    *,
    seeds: Sequence[int],
    budget: int | None,
    strategies: Sequence[str] = STRATEGIES,
    tolerance: float = TOLERANCE,
    progress: Callable[[str], None] = lambda _text: None,
) -> list[Row]:
    """One row per strategy (and ``auto`` also at the spec's own budget, which is what a user gets by default)."""
    hits = landscape.hits(tolerance)
    plans: list[tuple[str, str, int | None]] = [(s, s, budget) for s in strategies]
    spec_budget = loaded.spec.search.max_trials
    if "auto" in strategies and spec_budget is not None and spec_budget != budget:
        plans.append((f"auto@{spec_budget}", "auto", spec_budget))
    rows = []
    for label, strategy, limit in plans:
        began = time.monotonic()
        runs = [replay(loaded, landscape, strategy=strategy, seed=seed, max_trials=limit) for seed in seeds]
        for run in runs:
            hashes = [r.config_hash for r in run.measured]
            if len(hashes) != len(set(hashes)):
                raise AssertionError(f"{label} seed {run.seed} measured a config twice")
        resolved = "/".join(sorted({r.resolved for r in runs}))
        rows.append(Row(label, resolved, limit, [trials_to_hit(run, hits) for run in runs]))
        progress(f"  {label}: {len(runs)} replays in {time.monotonic() - began:.1f} s")
    return rows


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "miss"
    return f"{value:g}"


def print_spread(landscape: Landscape, tolerance: float) -> None:
    feasible = landscape.feasible()
    hits = landscape.hits(tolerance)
    total = len(landscape.points)
    print(
        f"landscape: {total} configs recorded ({landscape.grid_size} in the grid"
        + (", plus the baseline" if total > landscape.grid_size else "")
        + f"), {len(feasible)} feasible"
    )
    if landscape.version >= 2:
        counts = [len(p.values) for p in landscape.points.values()]
        flaky = landscape.flaky()
        kept = sum(p.outcome == "feasible" for p in flaky)
        print(
            f"  {len(landscape.passes)} recording passes ({', '.join(landscape.passes)}): {min(counts)}-{max(counts)} "
            f"measurements per config; {FEASIBLE_RULE}"
            + (f" ({len(flaky)} missed the SLOs only sometimes, {kept} of them counted feasible)" if flaky else "")
            + f"; {OBJECTIVE_RULE}"
        )
        if landscape.recorded_order and all(p.passes for p in landscape.points.values()):
            growth = landscape.infeasible_by_passes()
            print(
                "  configs infeasible after the first 1, 2, ... passes in recording order: "
                f"by the old rule {', '.join(str(old) for old, _new in growth)}; "
                f"by the majority {', '.join(str(new) for _old, new in growth)}"
            )
        noise = Noise.of(landscape)
        repeated = sum(1 for p in feasible if len(p.measurements) > 1)
        print(
            f"  noise: pooled CV {noise.cv:.1%} of a single measurement, from {repeated} feasible configs measured "
            f"more than once ({len(noise.residuals)} residuals; this table replays the truth, without noise)"
        )
    for rank, point in enumerate(feasible[:3], start=1):
        tag = " (baseline)" if point.baseline else ""
        gap = "" if rank == 1 else f" ({(point.objective or 0.0) / landscape.best - 1:+.1%})"
        values = f"  [{', '.join(f'{v:.1f}' for v in point.measurements)}]" if len(point.measurements) > 1 else ""
        print(f"  #{rank}: {point.objective:.1f} tok/s{gap}  {_config_id(point)}{tag}{values}")
    floor = landscape.best * (1 - tolerance)
    share = len(hits) / landscape.grid_size
    print(
        f"  within {tolerance:.0%} of the best (>= {floor:.1f} tok/s): {len(hits)} config(s), {share:.1%} of the grid"
    )
    print(f"  {uniform_reference(landscape, hits)}")
    for config_id, first, again in landscape.repeats:
        change = f" ({again / first - 1:+.1%})" if first and again else ""
        print(f"  measured again later: {config_id}: {first or 0:.1f} -> {again or 0:.1f} tok/s{change}")
    wider = ", ".join(f"{len(landscape.hits(t))} within {t:.0%}" for t in (0.05, 0.10))
    print(f"  (for scale: {wider})")
    spread = [p.objective or 0.0 for p in feasible]
    if spread:
        print(
            f"  feasible objectives: min {min(spread):.1f}, median {statistics.median(spread):.1f}, max {max(spread):.1f} tok/s"
        )


def _config_id(point: Point) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(point.config.items()))


def uniform_reference(landscape: Landscape, hits: set[str]) -> str:
    """What blind luck achieves: the expected trials of a uniformly random order, the baseline trial first.

    The first of k marked items in a random permutation of n sits at position (n + 1) / (k + 1) on average; a
    strategy that does no better than this has learnt nothing from the landscape.
    """
    baseline = next((p for p in landscape.points.values() if p.baseline), None)
    if baseline is not None and baseline.hash in hits:
        return "the baseline itself is within the tolerance: every strategy hits at trial 1"
    rest = len(landscape.points) - (1 if baseline is not None else 0)
    expected = (1 if baseline is not None else 0) + (rest + 1) / (len(hits) + 1)
    return (
        f"reference: a uniformly random order of the {rest} other configs reaches one after {expected:.1f} trials "
        f"on average (baseline trial counted)"
    )


def print_table(rows: Sequence[Row], landscape: Landscape, seeds: int, tolerance: float = TOLERANCE) -> bool:
    """The table; returns whether ``auto`` (at the replay budget) meets the target."""
    target = TARGET_SHARE * landscape.grid_size
    print(f"trials to reach a config within {tolerance:.0%} of the best, baseline trial counted, over {seeds} seeds:")
    header = f"  {'strategy':<10} {'runs as':<8} {'budget':>6} {'median':>7} {'p25':>5} {'p75':>5} {'max':>5} {'misses':>6} {'median/grid':>11}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    verdict = False
    for row in rows:
        median = row.quantile(0.5)
        share = median / landscape.grid_size
        print(
            f"  {row.label:<10} {row.resolved:<8} {row.budget if row.budget is not None else '-':>6} {_fmt(median):>7} "
            f"{_fmt(row.quantile(0.25)):>5} {_fmt(row.quantile(0.75)):>5} {_fmt(row.quantile(1.0)):>5} "
            f"{row.misses:>6} {'miss' if math.isinf(share) else f'{share:.1%}':>11}"
        )
        if row.label == "auto":
            verdict = median <= target
    print(
        "  ('runs as' is what the study chose: auto is the grid when a grid of at most 16 configs fits the "
        "budget, else TPE, so below that budget auto's figures are the tpe row's, cut at the budget; a full grid "
        "is measured in enumeration order, the same for every seed; misses count as more than any budget)"
    )
    for row in rows:
        if row.label.startswith("auto"):
            median = row.quantile(0.5)
            meets = "meets" if median <= target else "does NOT meet"
            print(
                f"{row.label} (runs as {row.resolved}, budget {row.budget}): median {_fmt(median)} trials -> {meets} "
                f"the target of <= {TARGET_SHARE:.0%} of the grid ({target:g} trials)"
            )
    return verdict


# ---------------------------------------------------------------------------------------------------- synthetic
def _log2(value: Any) -> float:
    return math.log2(float(value))


# Made-up shapes over the spec's grid, to check that a sampler tuned on the recorded landscape did not just learn
# that landscape: an optimum inside the grid, the "more of everything" corner, and a ridge along parallelism x batch
# that ends at an infeasible cliff (memory, in real engines). Noise-free, like the recorded replay.
BASELINE_DEFAULTS: dict[str, Any] = {"n-batch": 2048}  # what the baseline leaves to the engine: llama.cpp's default
SYNTHETIC: dict[str, Callable[[Mapping[str, Any]], float | None]] = {
    "interior optimum": lambda c: (
        100 - 8 * (_log2(c["n-batch"]) - 9.5) ** 2 - 10 * (_log2(c["n-parallel"]) - 1.2) ** 2 + 5 * float(c["threads"])
    ),
    "corner optimum": lambda c: (
        50 + 10 * _log2(c["n-parallel"]) + 3 * _log2(float(c["n-batch"]) / 256) + 8 * float(c["threads"])
    ),
    "ridge, infeasible cliff": lambda c: (
        None
        if float(c["n-parallel"]) * float(c["n-batch"]) > 4096
        else 60 + 0.01 * float(c["n-parallel"]) * float(c["n-batch"]) + 4 * float(c["threads"])
    ),
}


def synthetic_landscape(
    loaded: LoadedSpec, recorded: Landscape, shape: Callable[[Mapping[str, Any]], float | None]
) -> Landscape:
    """The spec's grid answered by ``shape`` (None: infeasible), and the baseline too.

    The baseline sets no n-batch (the engine's default, 2048 in llama.cpp: ``BASELINE_DEFAULTS``), so the shape
    answers it with that filled in. Not its recorded result: that is on the recording's scale, not the shape's,
    and could land anywhere on it (within 2% of one shape's best, once the recording's truth changed)."""
    points = []
    for config in loaded.space.grid():
        value = shape(config.as_dict())
        points.append(Point(config.as_dict(), config.hash, "feasible" if value is not None else "infeasible", value))
    grid = {q.hash for q in points}
    for base in (p for p in recorded.points.values() if p.baseline and p.hash not in grid):
        value = shape({**BASELINE_DEFAULTS, **base.config})
        outcome: Outcome = "feasible" if value is not None else "infeasible"
        points.append(Point(base.config, base.hash, outcome, value, baseline=True))
    return Landscape.of(points, len(points) - sum(1 for p in points if p.baseline))


def print_synthetic(loaded: LoadedSpec, recorded: Landscape, seeds: int, tolerance: float) -> None:
    strategies = ("random", "tpe")
    print(f"synthetic landscapes (made up; trials to within {tolerance:.0%} of the best, over {seeds} seeds):")
    print(f"  {'landscape':<24} {'hits':>4}  " + "  ".join(f"{s + ' median/mean':>22}" for s in strategies))
    for name, shape in SYNTHETIC.items():
        landscape = synthetic_landscape(loaded, recorded, shape)
        rows = efficiency(
            loaded,
            landscape,
            seeds=range(seeds),
            budget=landscape.grid_size + 1,
            strategies=strategies,
            tolerance=tolerance,
        )
        cells = [f"{_fmt(r.quantile(0.5))} / {r.mean():.1f}" for r in rows]
        print(f"  {name:<24} {len(landscape.hits(tolerance)):>4}  " + "  ".join(f"{c:>22}" for c in cells))


# ---------------------------------------------------------------------------------------------------- recording
def record(
    passes: Sequence[Path],
    out: Path,
    *,
    load: str,
    recorded_spec: Path | None = None,
    include_v1: Path | None = None,
) -> dict[str, Any]:
    """Turn the results.json of one or more recording passes into the landscape file (version 2): small, no
    per-request samples, every measurement of every config kept.

    Each results.json is one pass: a study of a copy of the spec (same space; name and search may differ) that
    measured the baseline and the grid, in any order (a random order keeps the machine's drift from lining up
    with one parameter); repeats in it count as more measurements, probe-skipped trials as none. A pass may also
    measure only some configs again, but together the passes must cover the grid. ``include_v1`` adds the values
    of a version-1 landscape file (its grid pass and its repeats) as further passes.
    """
    from autotuner.fingerprint import environment

    original = load_spec(SPEC)
    grid = [c.hash for c in original.space.grid()]
    measurements: dict[str, list[dict[str, Any]]] = {}
    configs: dict[str, dict[str, Any]] = {}
    pass_rows: list[dict[str, Any]] = []
    env: Any = None
    names: set[str] = set()
    runs: dict[str, Path] = {}
    for path in passes:
        result = StudyResult.read(path)
        if result.study_name in runs:  # e.g. a run directory and its ``latest`` link both given
            raise SystemExit(
                f"{path} is the same run as {runs[result.study_name]} ({result.study_name}): give each pass once"
            )
        runs[result.study_name] = path
        env = env or result.environment
        name = result.spec_name if result.spec_name not in names else f"{result.spec_name}#{len(pass_rows) + 1}"
        names.add(name)
        kept = 0
        for trial in sorted(result.trials, key=lambda t: (t.repeat, t.number)):
            if trial.outcome == "skipped":
                continue  # the probe's few requests are no measurement of the objective
            wall = (trial.stages[-1].ended - trial.stages[0].started) if trial.stages else None
            configs.setdefault(
                trial.config_hash, {"config": trial.config, "id": trial.config_id, "baseline": trial.baseline}
            )
            measurements.setdefault(trial.config_hash, []).append(
                {
                    "pass": name,
                    "trial": trial.number,  # measuring order within the pass: the machine's load varied over it
                    "outcome": trial.outcome,
                    "value": trial.objective if trial.outcome == "feasible" else None,
                    "level": trial.objectives[0].level if trial.objectives else None,
                    "reason": trial.reason,
                    "levels": [_level_row(level) for level in trial.levels],
                    "seconds": _round(wall),
                }
            )
            kept += 1
        pass_rows.append(
            {
                "name": name,
                "run": result.study_name,
                "strategy": result.strategy,
                "date": result.started,
                "finished": result.finished,
                "recorded_spec_digest": result.spec_digest,
                "measurements": kept,
            }
        )
    if include_v1 is not None:
        pass_rows.extend(_v1_passes(include_v1, configs, measurements))
    missing = set(grid) - set(measurements)
    if missing:
        raise SystemExit(f"{len(missing)} grid configs were measured in no pass; record the full grid")
    if env is None:
        env = environment(load_spec(recorded_spec).spec if recorded_spec is not None else original.spec)
    order = {h: i for i, h in enumerate(grid)}
    rows = []
    for config_hash in sorted(measurements, key=lambda h: (not configs[h]["baseline"], order.get(h, len(order)), h)):
        found = measurements[config_hash]
        values = [m["value"] for m in found]
        outcomes = [m["outcome"] for m in found]
        outcome, objective, bad = summarize(values, outcomes)
        rows.append(
            {
                "config": configs[config_hash]["config"],
                "hash": config_hash,
                "id": configs[config_hash]["id"],
                "baseline": configs[config_hash]["baseline"],
                "in_grid": config_hash in order,
                "outcome": outcome,
                "objective": objective,
                "reason": found[bad]["reason"] if bad is not None else "",
                "values": values,
                "outcomes": outcomes,
                "passes": [m["pass"] for m in found],
                "trials": [m["trial"] for m in found],
                "objective_levels": [m["level"] for m in found],
                "seconds": [m["seconds"] for m in found],
                "levels": [m["levels"] for m in found],
            }
        )
    data: dict[str, Any] = {
        "version": DATA_VERSION,
        "what": "every config of tuning_specs/smollm2-cpu.yaml's grid (plus its baseline), measured for real in "
        "several passes: all of each config's measurements",
        "spec": str(SPEC.relative_to(REPO)),
        "spec_digest": original.digest,
        "recorded_with": "autotuner tune on copies of the spec that differ only in name and search (each full pass "
        "measures the baseline and the whole grid once, in the order of its strategy: see passes)",
        "objective": f"{original.spec.objective[0]}",
        "rules": {"objective": OBJECTIVE_RULE, "feasible": FEASIBLE_RULE},
        "machine": {**env.model_dump(mode="json", exclude={"host"}), "load": load},
        "grid_size": len(grid),
        "passes": pass_rows,
        "configs": rows,
    }
    noise = Noise.of(Landscape.read_data(data))
    data["noise"] = {
        "pooled_cv": round(noise.cv, 4),
        "residuals": len(noise.residuals),
        "how": "relative residuals (v - mean) / mean * sqrt(n / (n - 1)) of the feasible configs measured more "
        "than once, pooled; pooled_cv is their root mean square",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_compact_json(data), encoding="utf-8")
    return data


def _level_row(level: Any) -> dict[str, Any]:
    return {
        "concurrency": level.concurrency,
        "feasible": level.feasible,
        "output_throughput": _round(level.output_throughput),
        "ttft_p90": _round(level.stats.get("ttft.p90")),
        "tpot_p90": _round(level.stats.get("tpot.p90")),
        "e2e_p99": _round(level.stats.get("e2e_latency.p99")),
        "errors": level.errors,
    }


def _v1_passes(
    path: Path, configs: dict[str, dict[str, Any]], measurements: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """A version-1 landscape's values as two passes: its grid pass and its later repeats of a few configs."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != 1:
        raise SystemExit(f"{path}: --include-v1 takes a version-1 landscape, not version {data.get('version')}")
    load = data.get("machine", {}).get("load", "not recorded")
    for c in data["configs"]:
        configs.setdefault(c["hash"], {"config": c["config"], "id": c["id"], "baseline": c["baseline"]})
        measurements.setdefault(c["hash"], []).append(
            {
                "pass": "v1",
                "trial": c["trial"],
                "outcome": c["outcome"],
                "value": c["objective"],
                "level": c.get("objective_level"),
                "reason": c.get("reason", ""),
                "levels": c.get("levels", []),
                "seconds": c.get("trial_seconds"),
            }
        )
    rows = [
        {
            "name": "v1",
            "run": data.get("run"),
            "strategy": "grid",
            "date": data.get("date"),
            "finished": data.get("finished"),
            "recorded_spec_digest": data.get("recorded_spec_digest"),
            "measurements": len(data["configs"]),
            "note": f"the version-1 recording (grid in enumeration order), measured under load: {load}",
        }
    ]
    repeats = data.get("repeats", [])
    for r in repeats:
        value = r["objective_again"]
        measurements.setdefault(r["hash"], []).append(
            {
                "pass": "v1-repeats",
                "trial": None,
                "outcome": "feasible" if value is not None else "infeasible",
                "value": value,
                "level": None,
                "reason": "" if value is not None else "not feasible when measured again (v1 kept no reason)",
                "levels": [],
                "seconds": None,
            }
        )
    if repeats:
        rows.append(
            {
                "name": "v1-repeats",
                "run": data.get("run"),
                "strategy": "repeats of a few configs",
                "date": repeats[0].get("measured"),
                "finished": None,
                "recorded_spec_digest": data.get("recorded_spec_digest"),
                "measurements": len(repeats),
                "note": "the version-1 file's repeats, measured right after its grid pass, under the same load",
            }
        )
    return rows


def _compact_json(data: dict[str, Any]) -> str:
    """Readable and small: the header indented, one line per config (a diff shows which configs changed)."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"  {json.dumps(item, separators=(',', ':'))}" for item in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _round(value: float | None) -> float | None:
    return None if value is None or value != value else round(value, 4)


# ---------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("record", help="store the results.json of recording passes as the landscape file")
    rec.add_argument("results", type=Path, nargs="+", help="one results.json per pass (together: the whole grid)")
    rec.add_argument("--spec", type=Path, default=None, help="a spec copy (its machine, if a pass lacks one)")
    rec.add_argument("--load", default="not recorded", help="how loaded the machine was while measuring")
    rec.add_argument("--out", type=Path, default=DATA)
    rec.add_argument(
        "--include-v1",
        type=Path,
        default=None,
        metavar="PATH",
        help="add a version-1 landscape's values as passes (it was measured under heavier load: say so in --load)",
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--budget", type=int, default=None, help="max_trials of each replay (default: the grid + 1)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument(
        "--synthetic", action="store_true", help="also replay three made-up landscapes (a check against overfitting)"
    )
    parser.add_argument("--old-rule", action="store_true", help=f"judge the recording by {OLD_RULE} (for comparison)")
    args = parser.parse_args(argv)

    if args.command == "record":
        data = record(args.results, args.out, load=args.load, recorded_spec=args.spec, include_v1=args.include_v1)
        print(
            f"wrote {args.out}: {len(data['configs'])} configs, {len(data['passes'])} passes, "
            f"pooled CV {data['noise']['pooled_cv']:.1%}"
        )
        return 0

    warnings.filterwarnings("ignore")  # optuna's ExperimentalWarning for multivariate TPE, once per replay
    landscape = Landscape.read(args.data)
    if args.old_rule:
        landscape = landscape.under_old_rule()
        print(f"truth by {OLD_RULE}")
    loaded = load_spec(SPEC)
    budget = args.budget or landscape.grid_size + 1
    print_spread(landscape, args.tolerance)
    rows = efficiency(
        loaded,
        landscape,
        seeds=range(args.seeds),
        budget=budget,
        tolerance=args.tolerance,
        progress=lambda text: print(text, flush=True),
    )
    ok = print_table(rows, landscape, args.seeds, args.tolerance)
    if args.synthetic:
        print_synthetic(loaded, landscape, args.seeds, args.tolerance)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
