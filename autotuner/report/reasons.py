"""Why a trial is not the best one, as data: which SLO at which level by how much, or how the engine failed.

``TrialRecord.reason`` is one line for a terminal; a report needs the parts (metric, level, limit, measured value,
relative miss) to sort, chart and test on. They are recomputed here from the recorded checks (``CheckRecord``),
which hold every figure, so the report never parses a sentence back into numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..results import CheckRecord, LevelRecord, TrialRecord
from . import formatting
from .ties import Ties

LossKind = Literal["best", "repeat", "tied", "flaky", "lower-objective", "slo", "level-failure", "failed", "skipped"]


@dataclass(frozen=True)
class SLOMiss:
    """One check that missed at one level: ``ttft.p90 3.85 s > 2 s at D(64,64)@4 (+92%)``."""

    level: str  # "D(64,64)@4"
    metric: str  # "ttft.p90", "error_rate", "output_throughput"
    bound: Literal["max", "min"]
    limit: float
    measured: float | None  # None: could not be measured
    hard: bool
    violation_rate: float | None = None  # share of requests beyond the limit (latencies)

    @property
    def overshoot(self) -> float:
        """Relative miss: ``measured / limit - 1`` for a limit, ``1 - measured / floor`` for a floor (inf: unmeasured)."""
        if self.measured is None or self.limit == 0:
            return math.inf
        if self.bound == "max":
            return self.measured / self.limit - 1
        return 1 - self.measured / self.limit

    def describe(self) -> str:
        op = ">" if self.bound == "max" else "<"
        measured = formatting.value(self.measured, self.metric)
        limit = formatting.value(self.limit, self.metric)
        by = "unmeasured" if math.isinf(self.overshoot) else f"{self.overshoot:+.0%}"
        share = f", {self.violation_rate:.0%} of requests over" if self.violation_rate else ""
        soft = " (soft)" if not self.hard else ""
        return f"{self.metric} {measured} {op} {limit} at {self.level} ({by}{share}){soft}"


@dataclass(frozen=True)
class Loss:
    """Why a trial lost (or ``best`` for the winner); ``summary`` is the one line a table shows."""

    kind: LossKind
    summary: str
    misses: tuple[SLOMiss, ...] = ()  # hard misses that made levels infeasible (for "slo", and limits of others)
    gap: float | None = None  # relative objective gap to the best, in the better direction (-0.12: 12% worse)


def level_key(level: LevelRecord) -> str:
    return f"{level.scenario}@{level.concurrency}"


def misses(level: LevelRecord, *, hard_only: bool = True) -> list[SLOMiss]:
    """The checks of a level that did not pass, hardest miss first (largest relative overshoot)."""
    found = [_miss(level, check) for check in level.checks if not check.passed and (check.hard or not hard_only)]
    return sorted(found, key=lambda m: -m.overshoot)  # an unmeasured check (inf) first


def _miss(level: LevelRecord, check: CheckRecord) -> SLOMiss:
    return SLOMiss(
        level=level_key(level),
        metric=check.metric,
        bound=check.bound,
        limit=check.limit,
        measured=check.measured,
        hard=check.hard,
        violation_rate=check.violation_rate,
    )


def loss(
    trial: TrialRecord,
    *,
    best: TrialRecord | None,
    maximize: bool,
    ties: Ties | None = None,
    flaky: frozenset[str] = frozenset(),
) -> Loss:
    """Why ``trial`` is not ``best``: the outcome decides which kind of reason applies.

    With a ranking (``ties``), a feasible trial can lose without a lower value: it is another measurement of the
    best config, its config missed the SLOs in at least half of its measurements (``flaky``), or it is tied with
    the best and the tie-break chose the other one."""
    if best is not None and trial.number == best.number:
        return Loss("best", "best", _limits(trial))
    if best is not None and trial.outcome == "feasible":
        if trial.config_hash == best.config_hash:
            return Loss("repeat", f"another measurement of the best config (repeat {trial.repeat})")
        if trial.config_hash in flaky:
            return Loss("flaky", "not recommended: it missed the SLOs in at least half of its measurements")
        if ties is not None and trial.config_hash in ties.tie_set:
            estimate = ties.estimate(trial.config_hash)
            p = f", p={estimate.p_value:.2f}" if estimate is not None and estimate.p_value is not None else ""
            return Loss(
                "tied", f"tied with the best at {ties.confidence:.0%} confidence{p}; the tie-break chose the best"
            )
    if trial.outcome == "failed":
        kind = trial.failure_kind or "failed"
        return Loss("failed", f"{kind}: {formatting.shorten(_strip_kind(trial.reason, kind))}".rstrip(": "))
    if trial.outcome == "skipped":
        return Loss("skipped", f"skipped: {formatting.shorten(trial.reason)}".rstrip(": "))
    if trial.outcome == "infeasible":
        return _infeasible(trial)
    return _lower(trial, best, maximize, ties)


def _strip_kind(reason: str, kind: str) -> str:
    """``oom: engine exited`` -> ``engine exited`` (the kind is shown once)."""
    prefix = f"{kind}: "
    return reason[len(prefix) :] if reason.startswith(prefix) else reason


def _infeasible(trial: TrialRecord) -> Loss:
    hard: list[SLOMiss] = []
    failures: list[str] = []
    for level in trial.levels:
        if level.failure is not None:
            failures.append(f"{level_key(level)}: {formatting.shorten(level.failure, 120)}")
        else:
            hard.extend(misses(level))
    if hard:
        first = hard[0]
        extra = f" (+{len(hard) - 1} more)" if len(hard) > 1 else ""
        return Loss("slo", first.describe() + extra, tuple(hard))
    if failures:
        extra = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        return Loss("level-failure", failures[0] + extra)
    return Loss("slo", formatting.shorten(trial.reason) or "no feasible level")


def _lower(trial: TrialRecord, best: TrialRecord | None, maximize: bool, ties: Ties | None) -> Loss:
    """The gap to the best: config means when the study ranked both (what the headline compares), else values."""
    value, top = trial.objective, best.objective if best is not None else None
    if ties is not None and best is not None:
        mine, theirs = ties.estimate(trial.config_hash), ties.estimate(best.config_hash)
        if mine is not None and theirs is not None:
            value, top = mine.mean, theirs.mean
    limits = _limits(trial)
    if value is None or top is None or top == 0:
        return Loss("lower-objective", "no objective value", limits)
    gap = (value / top - 1) if maximize else (top / value - 1 if value else -math.inf)
    summary = f"objective {formatting.percent(gap)} vs best"
    if limits:
        summary += f"; limited by {limits[0].describe()}"
    return Loss("lower-objective", summary, limits, gap)


def _limits(trial: TrialRecord) -> tuple[SLOMiss, ...]:
    """Hard misses at the levels a feasible config could not sustain: what kept its objective where it is."""
    found: list[SLOMiss] = []
    for level in trial.levels:
        if not level.feasible and level.failure is None:
            found.extend(misses(level))
    return tuple(found)
