"""What each chart shows, computed before anything is drawn (Optuna's visualization does the same: info first).

Tests assert on these tuples (which point is the best, which ones are on the Pareto front, which stages a trial
went through), never on pixels; ``charts.py`` only draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..results import StudyResult, TrialRecord
from .reasons import level_key

StageKind = Literal["launch", "ready", "warmup", "level", "judge", "teardown", "other"]
STAGE_KINDS: tuple[StageKind, ...] = ("launch", "ready", "warmup", "level", "judge", "teardown", "other")
_NAMED: dict[str, StageKind] = {"launch": "launch", "ready": "ready", "warmup": "warmup", "judge": "judge"}
PERCENTILES = ("p50", "p90", "p99")
LATENCIES = ("ttft", "tpot", "e2e_latency")


@dataclass(frozen=True)
class TrialPoint:
    """One trial on the objective-per-trial chart; infeasible and failed trials have no value."""

    number: int
    value: float | None
    outcome: str
    best: bool
    baseline: bool


@dataclass(frozen=True)
class HistoryPoint:
    number: int
    value: float | None
    best_so_far: float | None


@dataclass(frozen=True)
class LatencyPoint:
    """One (config, level): its output throughput against one latency statistic."""

    number: int
    config_id: str
    level: str
    concurrency: int
    throughput: float
    latency: float
    feasible: bool
    best: bool
    baseline: bool


@dataclass(frozen=True)
class LatencyPanel:
    metric: str  # e.g. "ttft.p90"
    limit: float | None  # the SLO threshold (a red dashed line), None when the spec sets none for it
    points: tuple[LatencyPoint, ...]
    front: tuple[LatencyPoint, ...]  # Pareto-optimal feasible points, by ascending throughput


@dataclass(frozen=True)
class PercentileSeries:
    role: Literal["best", "baseline"]
    config_id: str
    scenario: str
    metric: str  # ttft, tpot, e2e_latency
    statistic: str  # p50, p90, p99
    concurrency: tuple[int, ...]
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class StageBar:
    number: int
    stage: str
    kind: StageKind
    start: float  # seconds since the study's first stage
    duration: float
    ok: bool


def trial_points(result: StudyResult) -> tuple[TrialPoint, ...]:
    return tuple(
        TrialPoint(t.number, t.objective, t.outcome, t.number == result.best_trial, t.baseline)
        for t in sorted(result.trials, key=lambda t: t.number)
    )


def history(result: StudyResult, maximize: bool) -> tuple[HistoryPoint, ...]:
    """Best feasible objective so far, in the order trials were run (their numbers)."""
    points: list[HistoryPoint] = []
    best: float | None = None
    for trial in sorted(result.trials, key=lambda t: t.number):
        value = trial.objective if trial.outcome == "feasible" else None
        if value is not None and (best is None or (value > best if maximize else value < best)):
            best = value
        points.append(HistoryPoint(trial.number, value, best))
    return tuple(points)


def latency_panels(result: StudyResult) -> tuple[LatencyPanel, ...]:
    """One panel per latency SLO (or ``e2e_latency.p90`` when there is none), Pareto front over feasible points."""
    limits: dict[str, float] = {}
    for trial in result.trials:
        for level in trial.levels:
            for check in level.checks:
                if check.metric.split(".")[0] in LATENCIES:
                    limits.setdefault(check.metric, check.limit)
    metrics: Sequence[str] = list(limits) or ["e2e_latency.p90"]
    return tuple(_panel(result, metric, limits.get(metric)) for metric in metrics)


def _panel(result: StudyResult, metric: str, limit: float | None) -> LatencyPanel:
    points: list[LatencyPoint] = []
    for trial in sorted(result.trials, key=lambda t: t.number):
        for level in trial.levels:
            latency = level.stats.get(metric)
            if level.output_throughput is None or latency is None:
                continue
            points.append(
                LatencyPoint(
                    number=trial.number,
                    config_id=trial.config_id,
                    level=level_key(level),
                    concurrency=level.concurrency,
                    throughput=level.output_throughput,
                    latency=latency,
                    feasible=level.feasible,
                    best=trial.number == result.best_trial,
                    baseline=trial.baseline,
                )
            )
    return LatencyPanel(metric, limit, tuple(points), pareto_front(points))


def pareto_front(points: Sequence[LatencyPoint]) -> tuple[LatencyPoint, ...]:
    """Feasible points no other feasible point beats on both throughput (higher) and latency (lower)."""
    ordered = sorted((p for p in points if p.feasible), key=lambda p: (-p.throughput, p.latency, p.number))
    front: list[LatencyPoint] = []
    lowest: float | None = None
    for point in ordered:
        if lowest is None or point.latency < lowest:
            front.append(point)
            lowest = point.latency
    return tuple(sorted(front, key=lambda p: (p.throughput, p.number)))


def percentile_series(best: TrialRecord | None, baseline: TrialRecord | None) -> tuple[PercentileSeries, ...]:
    """TTFT/TPOT/E2E p50/p90/p99 against concurrency, per scenario, for the best config and the baseline config."""
    series: list[PercentileSeries] = []
    roles: list[tuple[Literal["best", "baseline"], TrialRecord]] = []
    if best is not None:
        roles.append(("best", best))
    if baseline is not None and (best is None or baseline.number != best.number):
        roles.append(("baseline", baseline))
    for role, trial in roles:
        scenarios = sorted({level.scenario for level in trial.levels})
        for scenario in scenarios:
            levels = sorted((lv for lv in trial.levels if lv.scenario == scenario), key=lambda lv: lv.concurrency)
            for metric in LATENCIES:
                for statistic in PERCENTILES:
                    values = tuple(lv.stats.get(f"{metric}.{statistic}") for lv in levels)
                    if any(v is not None for v in values):
                        concurrency = tuple(lv.concurrency for lv in levels)
                        series.append(
                            PercentileSeries(role, trial.config_id, scenario, metric, statistic, concurrency, values)
                        )
    return tuple(series)


def stage_kind(name: str) -> StageKind | None:
    """The timeline's category of a stage; None for ``bench``, which only wraps warm-up and the levels."""
    if name == "bench":
        return None
    if name.startswith("level"):
        return "level"
    if name.startswith("teardown"):
        return "teardown"
    return _NAMED.get(name, "other")


def timeline(result: StudyResult) -> tuple[StageBar, ...]:
    stages = [(t.number, s) for t in result.trials for s in t.stages]
    if not stages:
        return ()
    origin = min(s.started for _, s in stages)
    bars: list[StageBar] = []
    for number, stage in sorted(stages, key=lambda item: (item[0], item[1].started)):
        kind = stage_kind(stage.name)
        if kind is not None:
            bars.append(
                StageBar(
                    number, stage.name, kind, stage.started - origin, max(stage.ended - stage.started, 0.0), stage.ok
                )
            )
    return tuple(bars)
