"""The baseline comparison a report shows: typed rows of (metric, level, baseline, current, interval).

The statistics that decide "regressed or not" belong to ``autotuner/compare.py`` (issue 8), which does not exist
yet. The report only needs a shape to draw, so ``BaselineComparison`` is that shape: compare.py will fill one
(with its verdict and its own intervals) and hand it to ``build_report(comparison=...)`` without the renderers
changing. Until then ``simple_comparison`` compares the current best with the baseline file's best using simple
figures: objective values, and per level the throughput and latency intervals recorded with the results (or,
in results without them, genai-bench's throughput and mean latencies with a normal-approximation 95% interval
from the per-request samples). It gives no verdict: it is a glance, not a test.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

from ..results import Environment, LevelRecord, StudyResult, TrialRecord

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Estimate:
    """A figure with its interval when one is known (``low``/``high`` None: a single measurement)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ComparisonRow:
    metric: str  # "objective", "output_throughput", "ttft.mean", ...
    level: str  # "D(64,64)@4", or "" for the objective
    baseline: Estimate
    current: Estimate
    better: Literal["higher", "lower"]

    @property
    def change(self) -> float | None:
        """Relative change of the current figure against the baseline's (None when the baseline is 0)."""
        if self.baseline.value == 0:
            return None
        return self.current.value / self.baseline.value - 1

    @property
    def improved(self) -> bool | None:
        change = self.change
        if change is None or change == 0:
            return None
        return change > 0 if self.better == "higher" else change < 0


@dataclass(frozen=True)
class BaselineComparison:
    method: str  # how the figures were made, shown with them (a glance vs a statistical test)
    baseline_label: str
    current_label: str
    rows: tuple[ComparisonRow, ...]
    verdict: str | None = None  # better / same / regressed / inconclusive: only a statistical comparison sets it
    notes: tuple[str, ...] = ()


def simple_comparison(current: StudyResult, baseline: StudyResult) -> BaselineComparison | None:
    """Best vs the baseline file's best (simple figures, no verdict); None when either has no best config."""
    ours, theirs = current.best(), baseline.best()
    if ours is None or theirs is None:
        return None
    rows: list[ComparisonRow] = []
    direction = current.objectives[0].split()[0] if current.objectives else "maximize"
    now, before = _objective(current, ours), _objective(baseline, theirs)
    if now is not None and before is not None:
        better: Literal["higher", "lower"] = "higher" if direction == "maximize" else "lower"
        rows.append(ComparisonRow("objective", "", before, now, better))
    theirs_levels = {(lv.scenario, lv.concurrency): lv for lv in theirs.levels}
    for level in ours.levels:
        other = theirs_levels.get((level.scenario, level.concurrency))
        if other is not None and level.failure is None and other.failure is None:
            rows.extend(_level_rows(level, other))
    notes = list(_environment_notes(current.environment, baseline.environment))
    if current.objectives != baseline.objectives:
        notes.append(f"objectives differ: {baseline.objectives} in the baseline, {current.objectives} now")
    return BaselineComparison(
        method="simple figures: best config vs the baseline file's best, per-level intervals from per-request "
        "samples; no statistical verdict",
        baseline_label=_label(baseline, theirs),
        current_label=_label(current, ours),
        rows=tuple(rows),
        notes=tuple(notes),
    )


def _objective(result: StudyResult, best: TrialRecord) -> Estimate | None:
    """The best config's mean over its measurements with its interval when the study ranked it, else its value."""
    estimate = result.ranking.estimate(best.config_hash) if result.ranking is not None else None
    if estimate is not None:
        return Estimate(estimate.mean, estimate.interval.low, estimate.interval.high)
    return Estimate(best.objective) if best.objective is not None else None


def _label(result: StudyResult, trial: TrialRecord) -> str:
    return f"{result.study_name} ({result.started}): {trial.config_id}"


def _level_rows(ours: LevelRecord, theirs: LevelRecord) -> list[ComparisonRow]:
    """Per level: throughput, then latencies. Per-request intervals recorded with the levels (results schema 2)
    are used when both sides have them; otherwise genai-bench's throughput and latency means from the samples."""
    key = f"{ours.scenario}@{ours.concurrency}"
    rows: list[ComparisonRow] = []
    mine_throughput, their_throughput = _recorded(ours, "output_throughput"), _recorded(theirs, "output_throughput")
    if mine_throughput is not None and their_throughput is not None:
        rows.append(ComparisonRow("output_throughput", key, their_throughput, mine_throughput, "higher"))
    elif ours.output_throughput is not None and theirs.output_throughput is not None:
        rows.append(
            ComparisonRow(
                "output_throughput", key, Estimate(theirs.output_throughput), Estimate(ours.output_throughput), "higher"
            )
        )
    shared = [m for m in ours.intervals if m in theirs.intervals and m.split(".")[0] in ("ttft", "tpot", "e2e_latency")]
    for metric in sorted(shared):
        mine, other = _recorded(ours, metric), _recorded(theirs, metric)
        if mine is not None and other is not None:
            rows.append(ComparisonRow(metric, key, other, mine, "lower"))
    if shared:
        return rows
    for name in ("ttft", "tpot", "e2e_latency"):
        mean, their_mean = mean_interval(getattr(ours.samples, name)), mean_interval(getattr(theirs.samples, name))
        if mean is not None and their_mean is not None:
            rows.append(ComparisonRow(f"{name}.mean", key, their_mean, mean, "lower"))
    return rows


def _recorded(level: LevelRecord, metric: str) -> Estimate | None:
    found = level.intervals.get(metric)
    if found is None or found.estimate is None:
        return None
    return Estimate(found.estimate, found.low, found.high)


def mean_interval(samples: list[float]) -> Estimate | None:
    """The mean with a normal-approximation 95% interval (None without samples; no interval from one sample)."""
    values = [v for v in samples if not math.isnan(v)]
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(mean)
    half = Z95 * statistics.stdev(values) / math.sqrt(len(values))
    return Estimate(mean, mean - half, mean + half)


def _environment_notes(ours: Environment | None, theirs: Environment | None) -> list[str]:
    """Figures from different hardware or engines are not comparable: say so next to them."""
    if ours is None or theirs is None:
        return []
    notes = []
    for name in ("cpu", "cpus", "gpus", "engine", "genai_bench"):
        a, b = getattr(theirs, name), getattr(ours, name)
        if a != b:
            notes.append(f"environment differs: {name} was {a}, now {b}")
    return notes
