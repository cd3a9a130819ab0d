"""SLO judgement of one level, on that level's own distribution (pure: no I/O).

Each limit of the spec becomes a ``Check``: the statistic measured on the level's successful requests, the limit,
whether it passed, and the violation rate (the share of requests beyond the limit), which says more than the
percentile alone ("p90 2.3 s against 2 s; 14% of requests over"). A level is feasible when every hard check
passes and it produced a measurement at all. Levels never see each other: no percentile is averaged across
levels, so one level's verdict cannot depend on another's.

Soft checks cost score instead of feasibility: each soft miss multiplies the objective by
``exp(-overshoot / SOFT_STEEPNESS)``, where overshoot is the relative miss (``measured / limit - 1`` for an upper
limit, ``1 - measured / limit`` for a floor). With SOFT_STEEPNESS = 0.25 a 10% miss keeps 67% of the score and a
25% miss 37%: a config that misses a soft target has to be clearly better to win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .bench.measurement import LevelFailure, LevelKey, LevelResult, Measurement
from .spec import SLO, LatencySLO, RateSLO

SOFT_STEEPNESS = 0.25


@dataclass(frozen=True)
class Check:
    """One SLO limit judged on one level. ``bound`` is "max" for limits (latency, errors), "min" for floors."""

    metric: str  # e.g. "ttft.p90", "error_rate", "output_throughput"
    bound: str
    limit: float
    measured: float
    hard: bool
    violation_rate: float | None = None  # share of requests beyond the limit (latency checks)

    @property
    def passed(self) -> bool:
        if math.isnan(self.measured):
            return False
        return self.measured <= self.limit if self.bound == "max" else self.measured >= self.limit

    @property
    def overshoot(self) -> float:
        """Relative miss (0 when passed): how far beyond the limit, as a fraction of it."""
        if self.passed:
            return 0.0
        if math.isnan(self.measured):
            return math.inf
        if self.limit == 0:
            return math.inf
        return self.measured / self.limit - 1 if self.bound == "max" else 1 - self.measured / self.limit

    def describe(self) -> str:
        op = "<=" if self.bound == "max" else ">="
        state = "ok" if self.passed else ("MISSED" if self.hard else "missed (soft)")
        share = f", {self.violation_rate:.0%} of requests over" if self.violation_rate else ""
        return f"{self.metric} {_fmt(self.measured, self.metric)} {op} {_fmt(self.limit, self.metric)}: {state}{share}"


def _fmt(value: float, metric: str) -> str:
    if math.isnan(value):
        return "n/a"
    if metric == "error_rate":
        return f"{value:.1%}"
    if metric.split(".")[0] in ("ttft", "tpot", "e2e_latency"):
        return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
    return f"{value:.1f}"


@dataclass(frozen=True)
class LevelVerdict:
    key: LevelKey
    checks: tuple[Check, ...]
    failure: str | None = None  # the level produced no measurement

    @property
    def feasible(self) -> bool:
        return self.failure is None and all(c.passed for c in self.checks if c.hard)

    @property
    def soft_factor(self) -> float:
        """The multiplier soft misses apply to this level's objective value (1.0 when none missed)."""
        factor = 1.0
        for check in self.checks:
            if not check.hard and not check.passed:
                factor *= math.exp(-check.overshoot / SOFT_STEEPNESS) if math.isfinite(check.overshoot) else 0.0
        return factor

    @property
    def reasons(self) -> list[str]:
        """Why the level is infeasible, one line per hard miss (empty when feasible)."""
        if self.failure is not None:
            return [f"{self.key}: {self.failure}"]
        return [f"{self.key}: {c.describe()}" for c in self.checks if c.hard and not c.passed]


def judge(slo: SLO, result: LevelResult) -> LevelVerdict:
    if isinstance(result, LevelFailure):
        return LevelVerdict(result.key, (), result.reason)
    checks: list[Check] = []
    for metric in ("ttft", "tpot", "e2e_latency"):
        rule: LatencySLO | None = getattr(slo, metric)
        if rule is None:
            continue
        for statistic, limit in rule.limits.items():
            seconds = limit.total_seconds()
            checks.append(
                Check(
                    f"{metric}.{statistic}",
                    "max",
                    seconds,
                    result.statistic(metric, statistic),
                    rule.hard,
                    result.share_over(metric, seconds),
                )
            )
    checks.append(Check("error_rate", "max", slo.error_rate.max, result.error_rate, slo.error_rate.hard))
    for metric in ("output_throughput", "total_throughput", "requests_per_second"):
        floor: RateSLO | None = getattr(slo, metric)
        if floor is not None:
            checks.append(Check(metric, "min", floor.min, _rate(result, metric), floor.hard))
    return LevelVerdict(result.key, tuple(checks))


def _rate(measurement: Measurement, metric: str) -> float:
    return float(getattr(measurement, metric))
