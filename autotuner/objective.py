"""A config's objective value from its judged levels (pure: no I/O). Sign conventions are in the names.

``ObjectiveValue.value`` is always in the metric's own unit and direction (tokens/s for throughput, seconds for
latency); whether higher or lower is better is ``term.direction``. Nothing is negated to make "smaller is
better": comparisons go through ``better_than``.

Over which levels: only feasible ones (a level that broke a hard SLO says nothing about what the config can
sustain). Rates (throughputs, requests/s, goodput) take the best feasible level: the most load the config
serves within the SLOs. Latencies and the error rate take the worst feasible level: the latency users see at
the highest load the config sustains. Each level's value is first adjusted by its soft-SLO factor (see slo.py):
divided into rates, multiplied into latencies. A config with no feasible level has no value, and its reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .bench.measurement import LevelKey, LevelResult, Measurement
from .metric import Better
from .slo import LevelVerdict
from .spec import SLO, ObjectiveTerm


@dataclass(frozen=True)
class ObjectiveValue:
    term: ObjectiveTerm
    value: float | None  # None: no feasible level
    level: LevelKey | None  # the level the value comes from
    reasons: tuple[str, ...] = ()  # why infeasible

    @property
    def feasible(self) -> bool:
        return self.value is not None

    def better_than(self, other: ObjectiveValue) -> bool:
        """Strictly better: a feasible value beats an infeasible one; then the direction decides."""
        if self.value is None:
            return False
        if other.value is None:
            return True
        return self.value > other.value if self.term.direction == "maximize" else self.value < other.value


def goodput(measurement: Measurement, slo: SLO) -> float:
    """Requests per second that met every latency limit individually (each limit read as a per-request bound)."""
    limits: list[tuple[str, float]] = []
    for metric in ("ttft", "tpot", "e2e_latency"):
        rule = getattr(slo, metric)
        if rule is not None:
            limits.append((metric, min(v.total_seconds() for v in rule.limits.values())))
    total = len(measurement.samples)
    if total == 0:
        return 0.0
    good = 0
    for sample in measurement.samples:
        if not sample.ok:
            continue
        values = {m: getattr(sample, m) for m, _ in limits}
        if all(values[m] is not None and values[m] <= limit for m, limit in limits):
            good += 1
    return measurement.requests_per_second * good / total


def level_value(term: ObjectiveTerm, measurement: Measurement, slo: SLO) -> float:
    metric = term.metric
    if metric.name == "goodput":
        return goodput(measurement, slo)
    if metric.name == "error_rate":
        return measurement.error_rate
    if metric.statistic is not None:
        return measurement.statistic(metric.name, metric.statistic)
    return float(getattr(measurement, metric.name))


def evaluate(
    term: ObjectiveTerm,
    results: Mapping[LevelKey, LevelResult],
    verdicts: Sequence[LevelVerdict],
    slo: SLO,
) -> ObjectiveValue:
    candidates: list[tuple[float, LevelKey]] = []
    reasons: list[str] = []
    higher = term.metric.info.better is Better.HIGHER
    for verdict in verdicts:
        result = results[verdict.key]
        if not verdict.feasible or not isinstance(result, Measurement):
            reasons.extend(verdict.reasons)
            continue
        raw = level_value(term, result, slo)
        if math.isnan(raw):
            reasons.append(f"{verdict.key}: {term.metric} could not be measured")
            continue
        factor = verdict.soft_factor
        adjusted = raw * factor if higher else (raw / factor if factor > 0 else math.inf)
        candidates.append((adjusted, verdict.key))
    if not candidates:
        return ObjectiveValue(term, None, None, tuple(reasons) or ("no level was measured",))
    # rates: the best feasible level; latencies and errors: the worst feasible level
    value, key = max(candidates, key=lambda c: c[0])
    return ObjectiveValue(term, value, key)
