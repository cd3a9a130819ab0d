"""A terminal summary of a study: the best config, how it compares with the baseline, and what happened."""

from __future__ import annotations

from collections import Counter

from .estimates import tie_summary
from .results import RankingRecord, StudyResult, TrialRecord


def _objective(record: TrialRecord) -> str:
    if not record.objectives or record.objectives[0].value is None:
        return "-"
    first = record.objectives[0]
    return f"{first.value:.4g} ({first.level})" if first.level else f"{first.value:.4g}"


def summarize(result: StudyResult) -> str:
    lines = [f"{result.spec_name}: {len(result.trials)} trials ({result.strategy}); objective: {result.objectives[0]}"]
    outcomes = Counter(t.outcome for t in result.trials)
    lines.append("  " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())))
    best, baseline = result.best(), result.baseline()
    if best is None:
        lines.append("  no config met the SLOs")
        for record in result.trials[:10]:
            lines.append(f"    {record.config_id}: {record.outcome}: {record.reason}")
    else:
        lines.append(f"  best: {best.config_id} [{best.config_hash}]: {_objective(best)}")
        ranking = result.ranking
        estimate = ranking.estimate(best.config_hash) if ranking is not None else None
        if ranking is not None and estimate is not None:
            interval = estimate.interval
            if interval.low is not None and interval.high is not None:
                missed = result.missed(best.config_hash)
                also = f" ({missed} more missed the SLOs)" if missed else ""
                lines.append(
                    f"    {estimate.mean:.4g} over {len(estimate.values)} measurement(s){also}, "
                    f"{ranking.confidence:.0%} interval {interval.low:.4g}-{interval.high:.4g}"
                )
            lines.append(f"  {tie_summary(ranking, baseline.config_hash if baseline is not None else None)}")
            for note in ranking_notes(ranking):
                lines.append(f"    {note}")
        if baseline is not None and baseline.objective and best.objective is not None and baseline is not best:
            change = best.objective / baseline.objective - 1
            lines.append(f"  baseline: {baseline.config_id}: {_objective(baseline)}; best is {change:+.1%}")
        elif baseline is not None and baseline is not best:
            lines.append(f"  baseline: {baseline.config_id}: {baseline.outcome} {baseline.reason}".rstrip())
    probed = [t for t in result.trials if t.outcome == "skipped" and t.reason.startswith("probe")]
    if probed:
        lines.append(f"  {len(probed)} dropped early by the incumbent probe (their full workload was not run):")
        for record in probed[:5]:
            lines.append(f"    {record.config_id}: {record.reason}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def ranking_notes(ranking: RankingRecord) -> list[str]:
    """One line per tied config: its mean and interval, so "within noise" comes with the numbers."""
    lines = []
    for config_hash in ranking.tie_set:
        estimate = ranking.estimate(config_hash)
        if estimate is None or config_hash == ranking.best:
            continue
        low, high = estimate.interval.low, estimate.interval.high
        span = f", interval {low:.4g}-{high:.4g}" if low is not None and high is not None else ""
        lines.append(f"tied: {estimate.config_id}: {estimate.mean:.4g} over {len(estimate.values)}{span}")
    return lines
