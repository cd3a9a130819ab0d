"""The headline: which config is best, its value (a mean with its interval when the study ranked configs), its
gain over the baseline config, its statistical standing and the SLO status, in one small typed value (pure).

With a ranking (``StudyResult.ranking``) the figures are config means over every measurement and the gain compares
means; without one (older results, several objectives) single measurements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..metric import parse_metric
from ..results import StudyResult, TrialRecord
from ..wording import few
from .reasons import level_key, misses
from .ties import Ties

OUTCOME_ORDER = {"feasible": 0, "infeasible": 1, "failed": 2, "skipped": 3}


@dataclass(frozen=True)
class ObjectiveInfo:
    name: str  # "maximize output_throughput"
    direction: Literal["maximize", "minimize"]
    metric: str  # "output_throughput", "e2e_latency.p90"
    unit: str

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


@dataclass(frozen=True)
class Headline:
    """The answer at a glance: the best config, its value, its gain over the baseline config, the SLO status."""

    spec_name: str
    objective: ObjectiveInfo
    best_number: int | None
    best_config_id: str | None
    best_config_hash: str | None
    best_value: float | None  # the config's mean over its measurements when ranked, else its one measurement
    best_interval: tuple[float, float] | None  # of that mean, at the ranking's confidence
    best_measurements: int
    best_level: str | None
    baseline_number: int | None
    baseline_config_id: str | None
    baseline_value: float | None
    gain: float | None  # best / baseline - 1, in the metric's unit (+0.38: 38% more; for latencies, negative is good)
    improved: bool | None  # the gain is in the better direction
    baseline_note: str  # when there is no gain to show: why (baseline is the best, was infeasible, was not run)
    tie_note: str  # the best's statistical standing: separated, or tied with whom (empty without a ranking)
    slo_met: bool
    slo_status: str
    outcomes: tuple[tuple[str, int], ...]  # ("feasible", 12), ("failed", 2), ...
    trials: int
    elapsed: float | None  # seconds from the study's start to its end
    best_missed: int = 0  # the best config's measurements that missed the SLOs (left out of its mean)

    @property
    def summary(self) -> str:
        """One line: what a notification or a page title says."""
        if self.best_config_id is None:
            return f"{self.spec_name}: no config met the SLOs ({self.trials} trials)"
        gain = f", {self.gain:+.1%} vs baseline config" if self.gain is not None else ""
        value = f"{self.best_value:.4g} {self.objective.unit}".rstrip() if self.best_value is not None else "n/a"
        return f"{self.spec_name}: best {self.best_config_id}: {self.objective.metric} {value}{gain}"


def objective_info(name: str) -> ObjectiveInfo:
    """``"maximize output_throughput"`` -> its parts and unit (the StudyResult keeps objectives as text)."""
    direction, _, metric = name.partition(" ")
    try:
        unit = parse_metric(metric).info.unit if metric else ""
    except ValueError:  # a metric this version does not know (results from a newer tool): shown without a unit
        unit = ""
    return ObjectiveInfo(name, "minimize" if direction == "minimize" else "maximize", metric, unit)


def interval(low: float | None, high: float | None) -> tuple[float, float] | None:
    return (low, high) if low is not None and high is not None else None


def build_headline(
    result: StudyResult,
    objective: ObjectiveInfo,
    best: TrialRecord | None,
    base: TrialRecord | None,
    baseline_loss: str,
    ties: Ties | None,
) -> Headline:
    """The headline of ``result``; ``baseline_loss`` says why the baseline config lost (its trial row's reason)."""
    best_estimate = ties.estimate(best.config_hash) if ties is not None and best is not None else None
    base_estimate = ties.estimate(base.config_hash) if ties is not None and base is not None else None
    best_value = best_estimate.mean if best_estimate is not None else (best.objective if best else None)
    base_value = base_estimate.mean if base_estimate is not None else (base.objective if base else None)
    gain: float | None = None
    improved: bool | None = None
    if base is None:
        note = "no baseline config was measured in this run"
    elif best is not None and base.config_hash == best.config_hash:
        note = "the baseline config is the best config"
    elif base_value is None:
        note = f"the baseline config (trial {base.number}) is {base.outcome}: {baseline_loss}"
    elif best is None:
        note = ""
    elif best_value is not None and base_value != 0:
        gain = best_value / base_value - 1
        improved = gain > 0 if objective.maximize else gain < 0
        note = ""
    else:
        note = "the baseline config's objective is 0: no relative gain"
    outcomes: Counter[str] = Counter(str(t.outcome) for t in result.trials)
    return Headline(
        spec_name=result.spec_name,
        objective=objective,
        best_number=best.number if best else None,
        best_config_id=best.config_id if best else None,
        best_config_hash=best.config_hash if best else None,
        best_value=best_value,
        best_interval=interval(best_estimate.low, best_estimate.high) if best_estimate is not None else None,
        best_measurements=best_estimate.measurements if best_estimate is not None else (1 if best else 0),
        best_level=best.objectives[0].level if best and best.objectives else None,
        baseline_number=base.number if base else None,
        baseline_config_id=base.config_id if base else None,
        baseline_value=base_value,
        gain=gain,
        improved=improved,
        baseline_note=note,
        tie_note=_tie_note(ties, best) if best is not None else "",
        slo_met=best is not None,
        slo_status=_slo_status(best, outcomes),
        outcomes=tuple(sorted(outcomes.items(), key=lambda kv: OUTCOME_ORDER.get(kv[0], 4))),
        trials=len(result.trials),
        elapsed=_elapsed(result.started, result.finished),
        best_missed=result.missed(best.config_hash) if best is not None else 0,
    )


def _tie_note(ties: Ties | None, best: TrialRecord) -> str:
    """Whether the measurements single out the best: a tie says the choice among those configs is a tie-break."""
    if ties is None:
        return ""
    others = [e.config_id for h in ties.tie_set if h != best.config_hash for e in [ties.estimate(h)] if e]
    if ties.separated:
        return f"better than every other config at {ties.confidence:.0%} confidence"
    if not others:
        return f"not yet shown better than every other config at {ties.confidence:.0%} confidence"
    return (
        f"tied at {ties.confidence:.0%} confidence with {len(others)} other config(s): {few(others)}; "
        f"chosen by the tie-break ({ties.tie_break})"
    )


def _slo_status(best: TrialRecord | None, outcomes: Counter[str]) -> str:
    if best is None:
        parts = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items(), key=lambda kv: OUTCOME_ORDER.get(kv[0], 4)))
        return f"no config met the SLOs ({parts or 'no trials'})"
    feasible = [level_key(lv) for lv in best.levels if lv.feasible]
    status = f"met at {len(feasible)} of {len(best.levels)} levels ({', '.join(feasible)})"
    soft = [m for lv in best.levels if lv.feasible for m in misses(lv, hard_only=False) if not m.hard]
    if soft:
        status += "; soft misses: " + "; ".join(m.describe() for m in soft)
    return status


def _elapsed(started: str, finished: str | None) -> float | None:
    if finished is None:
        return None
    try:
        return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return None
