"""Report data: everything a report says, computed from a ``StudyResult`` by pure code (no I/O, no drawing).

The renderers (Markdown, HTML, charts, Mermaid) only lay this out, so what the report claims (which config won,
by how much it beats the baseline config, why each other config lost) is tested here, on data, once.

With a ranking in the results (``StudyResult.ranking``: every config's mean over its measurements with an
interval, and the tie-set of configs indistinguishable from the best), the headline's figures are those means and
the gain over the baseline config compares means; without one (older results, several objectives), single
measurements.

``comparison`` is the extension point for the baseline comparison: a ``BaselineComparison`` (comparison.py) that
compare.py (issue 8) will build; until then a baseline file is compared with simple figures. Rendered only when
present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..estimates import counts
from ..results import Environment, LevelRecord, StudyResult, TrialRecord
from . import series
from .comparison import BaselineComparison, simple_comparison
from .headline import OUTCOME_ORDER, Headline, ObjectiveInfo, build_headline, interval, objective_info
from .reasons import Loss, level_key, loss
from .ties import Ties, ties_of

Launcher = Literal["process", "docker", "kubernetes", "endpoint"]


@dataclass(frozen=True)
class TrialRow:
    rank: int  # 1 = the best; sorted by objective, then infeasible, failed, skipped
    number: int
    config_id: str
    config_hash: str
    baseline: bool
    best: bool
    repeat: int
    outcome: str
    values: tuple[float | None, ...]  # one per objective
    level: str | None  # the level the first objective comes from
    loss: Loss
    failure_kind: str | None
    seconds: float | None  # wall time of the trial, first stage start to last stage end
    engine_log: str | None  # relative to the report folder when inside it
    in_tie_set: bool = False  # cannot be told apart from the best (the ranking's tie-set)
    mean: float | None = None  # the config's mean objective over its measurements (ranked configs)
    interval: tuple[float, float] | None = None  # that mean's interval

    @property
    def objective(self) -> float | None:
        return self.values[0] if self.values else None


@dataclass(frozen=True)
class CheckRow:
    metric: str
    bound: Literal["max", "min"]
    limit: float
    measured: float | None
    hard: bool
    passed: bool
    violation_rate: float | None
    margin: float | None  # room left as a fraction of the limit (0.4: 40% under a limit / over a floor)


@dataclass(frozen=True)
class LevelRow:
    level: str
    scenario: str
    concurrency: int
    feasible: bool
    failure: str | None
    requests: int
    errors: int
    output_throughput: float | None
    stats: tuple[tuple[str, float | None], ...]
    checks: tuple[CheckRow, ...]
    chosen: bool  # the objective's value comes from this level


@dataclass(frozen=True)
class LaunchCommand:
    launcher: Launcher
    command: str
    manifest: str | None = None  # kubernetes: the InferenceService the best trial applied


@dataclass(frozen=True)
class ReportData:
    headline: Headline
    objectives: tuple[ObjectiveInfo, ...]
    command: LaunchCommand | None
    trials: tuple[TrialRow, ...]
    best_levels: tuple[LevelRow, ...]
    environment: Environment | None
    study_name: str
    strategy: str
    spec_file: str
    started: str
    finished: str | None
    notes: tuple[str, ...]
    points: tuple[series.TrialPoint, ...]
    history: tuple[series.HistoryPoint, ...]
    panels: tuple[series.LatencyPanel, ...]
    percentiles: tuple[series.PercentileSeries, ...]
    timeline: tuple[series.StageBar, ...]
    comparison: BaselineComparison | None = None
    ties: Ties | None = None

    @property
    def tie_set(self) -> tuple[str, ...]:
        """Config hashes the measurements cannot tell apart from the best (best first); empty without a ranking."""
        return self.ties.tie_set if self.ties is not None else ()


def build_report(
    result: StudyResult,
    *,
    baseline: StudyResult | None = None,
    comparison: BaselineComparison | None = None,
    run_dir: Path | None = None,
    manifest: str | None = None,
) -> ReportData:
    """The report of ``result``; ``comparison`` wins over ``baseline`` (simple figures) when both are given.

    ``run_dir`` makes log paths relative to the report (links that survive moving the folder); ``manifest`` is
    the best trial's InferenceService text for kubernetes runs (read by the caller: this function does no I/O).
    """
    objectives = tuple(objective_info(name) for name in result.objectives) or (objective_info("maximize"),)
    first = objectives[0]
    best, base = result.best(), result.baseline()
    ties = ties_of(result)
    rows = _rows(result, best, first, run_dir, ties)
    if comparison is None and baseline is not None:
        comparison = simple_comparison(result, baseline)
    return ReportData(
        headline=build_headline(result, first, best, base, _baseline_loss(rows, base), ties),
        objectives=objectives,
        command=_command(result.best_command, manifest) if best is not None else None,
        trials=rows,
        best_levels=_levels(best) if best is not None else (),
        environment=result.environment,
        study_name=result.study_name,
        strategy=result.strategy,
        spec_file=result.spec_file,
        started=result.started,
        finished=result.finished,
        notes=tuple(result.notes),
        points=series.trial_points(result),
        history=series.history(result, first.maximize),
        panels=series.latency_panels(result),
        percentiles=series.percentile_series(best, base),
        timeline=series.timeline(result),
        comparison=comparison,
        ties=ties,
    )


def _sort_key(trial: TrialRecord, best: TrialRecord | None, maximize: bool) -> tuple[int, float, int]:
    """The best first (the ranking may prefer it over a higher single value), then by objective, then the rest."""
    if best is not None and trial.number == best.number:
        return (-1, 0.0, trial.number)
    value = trial.objective
    order = OUTCOME_ORDER.get(trial.outcome, 4)
    if order == 0 and value is not None:
        return (0, -value if maximize else value, trial.number)
    return (order if order else 1, 0.0, trial.number)


def _flaky(result: StudyResult) -> frozenset[str]:
    """Configs feasible on some measurements but not on most: not recommended (``estimates.counts``)."""
    measured: dict[str, list[bool]] = {}
    for trial in result.trials:
        measured.setdefault(trial.config_hash, []).append(trial.met_slos)
    return frozenset(h for h, met in measured.items() if any(met) and not counts(sum(met), len(met)))


def _rows(
    result: StudyResult, best: TrialRecord | None, first: ObjectiveInfo, run_dir: Path | None, ties: Ties | None
) -> tuple[TrialRow, ...]:
    ordered = sorted(result.trials, key=lambda t: _sort_key(t, best, first.maximize))
    flaky = _flaky(result)
    return tuple(_row(rank, t, best, first, run_dir, ties, flaky) for rank, t in enumerate(ordered, start=1))


def _row(
    rank: int,
    t: TrialRecord,
    best: TrialRecord | None,
    first: ObjectiveInfo,
    run_dir: Path | None,
    ties: Ties | None,
    flaky: frozenset[str],
) -> TrialRow:
    estimate = ties.estimate(t.config_hash) if ties is not None else None
    return TrialRow(
        rank=rank,
        number=t.number,
        config_id=t.config_id,
        config_hash=t.config_hash,
        baseline=t.baseline,
        best=best is not None and t.number == best.number,
        repeat=t.repeat,
        outcome=t.outcome,
        values=tuple(o.value for o in t.objectives),
        level=t.objectives[0].level if t.objectives else None,
        loss=loss(t, best=best, maximize=first.maximize, ties=ties, flaky=flaky),
        failure_kind=t.failure_kind,
        seconds=(max(s.ended for s in t.stages) - min(s.started for s in t.stages)) if t.stages else None,
        engine_log=_relative(t.engine_log, run_dir),
        in_tie_set=ties is not None and t.config_hash in ties.tie_set,
        mean=estimate.mean if estimate is not None else None,
        interval=interval(estimate.low, estimate.high) if estimate is not None else None,
    )


def _baseline_loss(rows: tuple[TrialRow, ...], base: TrialRecord | None) -> str:
    row = next((r for r in rows if base is not None and r.number == base.number), None)
    return row.loss.summary if row is not None else ""


def _relative(path: str | None, run_dir: Path | None) -> str | None:
    if path is None or run_dir is None:
        return path
    try:
        return Path(path).relative_to(run_dir).as_posix()
    except ValueError:
        return path


def _levels(trial: TrialRecord) -> tuple[LevelRow, ...]:
    chosen = trial.objectives[0].level if trial.objectives else None
    return tuple(
        LevelRow(
            level=level_key(lv),
            scenario=lv.scenario,
            concurrency=lv.concurrency,
            feasible=lv.feasible,
            failure=lv.failure,
            requests=lv.requests,
            errors=lv.errors,
            output_throughput=lv.output_throughput,
            stats=tuple(lv.stats.items()),
            checks=_checks(lv),
            chosen=level_key(lv) == chosen,
        )
        for lv in sorted(trial.levels, key=lambda lv: (lv.scenario, lv.concurrency))
    )


def _checks(level: LevelRecord) -> tuple[CheckRow, ...]:
    rows = []
    for c in level.checks:
        margin: float | None = None
        if c.measured is not None and c.limit:
            margin = 1 - c.measured / c.limit if c.bound == "max" else c.measured / c.limit - 1
        rows.append(CheckRow(c.metric, c.bound, c.limit, c.measured, c.hard, c.passed, c.violation_rate, margin))
    return tuple(rows)


def launcher_of(command: str) -> Launcher:
    """Which launcher produced ``StudyResult.best_command`` (rendered by ``launch.command.command_line``)."""
    if command.startswith("docker "):
        return "docker"
    if command.startswith("kubectl "):
        return "kubernetes"
    if command.startswith("(endpoint"):
        return "endpoint"
    return "process"


def _command(command: str | None, manifest: str | None) -> LaunchCommand | None:
    if command is None:
        return None
    launcher = launcher_of(command)
    return LaunchCommand(launcher, command, manifest if launcher == "kubernetes" else None)
