"""The same-runner A/B against main's baseline: a step of a tuning session, after the search and racing.

Main's best config (A, from ``baseline.json``) and this run's best (B) are measured again on this machine, one
after the other, for ``rounds`` rounds in an order that alternates (A B, B A, A B, ...): drift within a round
hits both arms alike, and over two rounds a linear drift cancels. Only these interleaved measurements are
compared (compare.py), never B's earlier ones, which ran at another time. Every measurement goes through the
study's trial pipeline (``Study.measure_again``): it is a recorded trial with its logs like any other.

When A/B is not possible the comparison uses the baseline's stored numbers and says so: the environments differ
(allowed only with ``allow_mismatch``: re-measuring A here would not show what changed), or the recommended config
is the same as main's (then B is measured until it has ``rounds`` measurements and compared with main's stored
ones: an A/B of a config against itself could never show a regression).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .compare import Comparison, Figure, Mode, compare_results, environment_mismatch
from .results import Environment, StudyResult, TrialRecord
from .space import Config

if TYPE_CHECKING:
    from .report.comparison import BaselineComparison
    from .spec import TuningSpec
    from .study import Study
    from .tune import TuneSession

# Interleaved rounds when neither --ab-rounds nor a larger search.repeats asks for more. Sized by
# benchmarks/regression_accuracy.py: see README, "Regression detection".
DEFAULT_ROUNDS = 5


class BaselineMismatch(ValueError):
    """The baseline was measured on other hardware or another engine, and no one allowed the comparison."""


def check_environment(baseline: StudyResult, current: Environment | None, *, allow_mismatch: bool) -> list[str]:
    """The differences that make the baseline's numbers incomparable; raises unless ``allow_mismatch``."""
    found = environment_mismatch(baseline.environment, current)
    if found and not allow_mismatch:
        raise BaselineMismatch(
            "the baseline was measured elsewhere, so its numbers are not comparable: "
            + "; ".join(found)
            + " (update the baseline on this runner, or pass --allow-mismatch to compare anyway, with a warning)"
        )
    return found


def rounds_for(spec: TuningSpec, override: int | None = None) -> int:
    """``override``, else the larger of ``search.repeats`` and ``DEFAULT_ROUNDS``; at least 2 (a spread needs 2)."""
    return max(2, override if override is not None else max(spec.search.repeats, DEFAULT_ROUNDS))


def _next_repeat(study: Study, config: Config) -> int:
    """The next repeat number of ``config``: after its last one (1 when this run never measured it: a first
    measurement would be the search's, and probed)."""
    return 1 + max((r.repeat for r in study.result.trials if r.config_hash == config.hash), default=0)


def interleave(
    study: Study, a: Config, b: Config, rounds: int, progress: Callable[[str], None] = lambda _t: None
) -> tuple[list[TrialRecord], list[TrialRecord]]:
    """Measure ``a`` and ``b`` for ``rounds`` rounds, A B then B A alternately; both arms' records."""
    records: dict[str, list[TrialRecord]] = {a.hash: [], b.hash: []}
    for index in range(rounds):
        progress(f"A/B round {index + 1} of {rounds}: main's {a.id} vs this run's {b.id}")
        for config in (a, b) if index % 2 == 0 else (b, a):
            record = study.measure_again(config, _next_repeat(study, config))
            if record is not None:
                records[config.hash].append(record)
    return records[a.hash], records[b.hash]


def run_ab(
    session: TuneSession,
    baseline: StudyResult,
    *,
    rounds: int | None = None,
    allow_mismatch: bool = False,
    source: str = "",
    progress: Callable[[str], None] = lambda _t: None,
) -> Comparison:
    """After the search: measure A/B when possible, then compare (see the module notes for the modes)."""
    study = session.study
    spec = session.loaded.spec
    current = study.result
    mismatch = check_environment(baseline, current.environment, allow_mismatch=allow_mismatch)
    count = rounds_for(spec, rounds)
    base_best, best = baseline.best(), current.best()
    if base_best is None:
        raise BaselineMismatch(f"the baseline {source} has no best config")

    def compare(
        mode: Mode, arm_a: list[TrialRecord] | None = None, arm_b: list[TrialRecord] | None = None
    ) -> Comparison:
        return compare_results(
            baseline,
            current,
            threshold=spec.regression.threshold,
            confidence=spec.regression.confidence,
            mode=mode,
            baseline_records=arm_a,
            current_records=arm_b,
            allow_mismatch=allow_mismatch,
            source=source,
        )

    if best is None or mismatch:
        return compare("stored")
    a, b = Config.of(base_best.config), Config.of(best.config)
    if a.hash == b.hash:
        for _ in range(count - sum(1 for r in current.trials if r.config_hash == b.hash)):
            study.measure_again(b, _next_repeat(study, b))
        comparison = compare("stored")
        comparison.notes.insert(0, f"the recommended config is main's ({b.id}): nothing to A/B against")
        return comparison
    return compare("ab", *interleave(study, a, b, count, progress))


def after_finish(comparison: Comparison, result: StudyResult) -> None:
    """The A/B measurements are measurements like any other and count in the ranking: say so when they changed
    the recommendation (typically to main's config, when it measured better than this run's best)."""
    best = result.best()
    if best is None or comparison.current_config_hash in (None, best.config_hash):
        return
    whose = "main's config, " if best.config_hash == comparison.baseline_config_hash else ""
    note = (
        f"with the A/B measurements the recommendation is now {whose}{best.config_id}, "
        f"not {comparison.current_config_id} as when it was compared"
    )
    if note not in comparison.notes:
        comparison.notes.append(note)


def report_comparison(comparison: Comparison, result: StudyResult) -> BaselineComparison:
    """The report's shape (report/comparison.py) filled from the statistical comparison, verdict included."""
    from .report.comparison import BaselineComparison, ComparisonRow, Estimate

    def estimate(values: list[float], figure: Figure | None) -> Estimate:
        mean = sum(values) / len(values) if values else float("nan")
        if figure is None or figure.estimate is None:
            return Estimate(mean)
        return Estimate(figure.estimate, figure.low, figure.high)

    rows = []
    for index, metric in enumerate((*comparison.objectives, *comparison.slo_metrics)):
        rows.append(
            ComparisonRow(
                "objective" if index == 0 and metric.level is None else metric.metric,
                metric.level or "",
                estimate(metric.baseline_values, metric.baseline),
                estimate(metric.current_values, metric.current),
                "higher" if metric.direction == "maximize" else "lower",
            )
        )
    how = (
        f"same-runner A/B, {len(comparison.current_trials)} interleaved rounds"
        if comparison.mode == "ab"
        else "against the baseline's stored numbers (machine drift not cancelled)"
    )
    notes = [
        *comparison.warnings,
        *(f"{m.label}: {m.verdict}: {m.reason}" for m in (*comparison.objectives, *comparison.slo_metrics)),
        *(f"SLO: {finding}" for finding in comparison.slo_findings),
        *comparison.notes,
    ]
    return BaselineComparison(
        method=f"{how}; relative change with {comparison.confidence:.0%} intervals (log-ratio t over repeats), "
        f"threshold {comparison.threshold:.0%}",
        baseline_label=f"main ({comparison.baseline_source or 'baseline'}): {comparison.baseline_config_id}",
        current_label=f"{result.study_name} ({result.started}): {comparison.current_config_id}",
        rows=tuple(rows),
        verdict=comparison.verdict,
        notes=tuple(notes),
    )
