"""From measured records to pytest outcomes, messages and junit properties (pure: no I/O, no pytest state).

The mapping, and why:
- a config that meets its SLOs passes;
- a config that misses them or fails to start is an expected result of exploring the space (xfail, with the
  measured reason), so CI stays green while a good config exists; ``--tune-strict`` turns those into failures;
- a config the study did not measure (``skipped``: budget, time budget) is skipped;
- infrastructure errors never reach this module: they are raised while measuring, in the item's setup, which
  pytest reports as an error.
Messages carry numbers (measured against limit, at which level), because "infeasible" alone tells nobody
what to change.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from ..estimates import tie_summary
from ..metric import METRICS
from ..results import CheckRecord, StudyResult, TrialRecord
from ..summary import ranking_notes

PROPERTY_PREFIX = "autotuner."


def format_value(metric: str, value: float | None) -> str:
    """``410ms``, ``2.41s``, ``1.5%``, ``123.4 tokens/s``: numbers read in their metric's unit."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    name = metric.split(".")[0]
    info = METRICS.get(name)
    if info is None:
        return f"{value:.4g}"
    if info.unit == "s":
        return f"{value * 1000:.0f}ms" if abs(value) < 1 else f"{value:.3g}s"
    if info.unit == "fraction":
        return f"{value:.1%}"
    return f"{value:.4g} {info.unit}"


def describe_check(check: CheckRecord) -> str:
    op = ("<=" if check.passed else ">") if check.bound == "max" else (">=" if check.passed else "<")
    share = f" ({check.violation_rate:.0%} of requests over)" if check.violation_rate and not check.passed else ""
    return f"{check.metric} {format_value(check.metric, check.measured)} {op} {format_value(check.metric, check.limit)}{share}"


def misses(record: TrialRecord) -> list[str]:
    """Every hard SLO miss and level failure of a trial, with numbers: ``D(64,64)@4: ttft.p90 2.41s > 2s``."""
    lines: list[str] = []
    for level in record.levels:
        key = f"{level.scenario}@{level.concurrency}"
        if level.failure:
            lines.append(f"{key}: {level.failure}")
            continue
        lines.extend(f"{key}: {describe_check(c)}" for c in level.checks if c.hard and not c.passed)
    return lines


def explain(record: TrialRecord) -> str:
    """Why a config is not feasible: its outcome, then each hard miss with its numbers (or the failure's reason,
    and where the engine's log is)."""
    found = misses(record)
    head = f"{record.config_id}: {record.outcome}"
    if record.failure_kind and not record.reason.startswith(record.failure_kind):
        head += f" ({record.failure_kind})"
    if found:
        head += ": " + "; ".join(found)
    elif record.reason:
        head += f": {record.reason}"
    if record.outcome == "failed" and record.engine_log:
        head += f"\n  engine log: {record.engine_log}"
    return head


def objective_text(record: TrialRecord) -> str:
    if not record.objectives:
        return "no objective"
    parts = []
    for objective in record.objectives:
        metric = objective.name.split(" ", 1)[-1]
        where = f" at {objective.level}" if objective.level else ""
        parts.append(f"{objective.name} = {format_value(metric, objective.value)}{where}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Judgement:
    """What a config's test does: ``passed``, ``xfailed``, ``failed`` or ``skipped``, and the message."""

    outcome: str
    message: str


def judge_record(record: TrialRecord, *, strict: bool) -> Judgement:
    if record.outcome == "feasible":
        return Judgement("passed", f"{record.config_id}: meets the SLOs; {objective_text(record)}")
    if record.outcome == "skipped":
        return Judgement("skipped", f"{record.config_id}: not measured: {record.reason or 'skipped by the study'}")
    return Judgement("failed" if strict else "xfailed", explain(record))


def record_properties(record: TrialRecord) -> list[tuple[str, object]]:
    """junit ``<property>`` pairs for one trial: outcome, objective, and per level the key metrics and checks."""
    p = PROPERTY_PREFIX
    props: list[tuple[str, object]] = [
        (f"{p}config", record.config_id),
        (f"{p}config_hash", record.config_hash),
        (f"{p}trial", record.number),
        (f"{p}baseline", record.baseline),
        (f"{p}outcome", record.outcome),
    ]
    if record.reason:
        props.append((f"{p}reason", record.reason))
    if record.failure_kind:
        props.append((f"{p}failure_kind", record.failure_kind))
    for objective in record.objectives:
        props.append((f"{p}objective.{objective.name.split(' ', 1)[-1]}", _number(objective.value)))
        if objective.level:
            props.append((f"{p}objective_level", objective.level))
    for level in record.levels:
        key = f"{p}level.{level.scenario}@{level.concurrency}"
        props.append((f"{key}.feasible", level.feasible))
        for name in ("output_throughput", "total_throughput", "requests_per_second"):
            value = getattr(level, name)
            if value is not None:
                props.append((f"{key}.{name}", _number(value)))
        for name, value in sorted(level.stats.items()):
            if value is not None:
                props.append((f"{key}.{name}", _number(value)))
        props.append((f"{key}.error_rate", _number(level.error_rate)))
        for check in level.checks:
            props.append(
                (f"{key}.check.{check.metric}", ("ok: " if check.passed else "missed: ") + describe_check(check))
            )
    for stage in record.stages:
        props.append((f"{p}stage.{stage.name}.seconds", round(stage.seconds, 3)))
    if record.engine_log:
        props.append((f"{p}engine_log", record.engine_log))
    return props


def _number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 6)


# -------------------------------------------------------------------------------------------------- verdict
@dataclass(frozen=True)
class Counts:
    run: int
    feasible: int
    infeasible: int
    failed: int
    skipped: int
    repeats: int = 0  # re-measurements while racing the best against its tie-set

    def __str__(self) -> str:
        text = (
            f"{self.run} run ({self.feasible} feasible, {self.infeasible} infeasible, {self.failed} failed), "
            f"{self.skipped} skipped"
        )
        return text + (f", {self.repeats} repeats" if self.repeats else "")


def counts(result: StudyResult) -> Counts:
    """Configs by outcome (first measurements only; repeats are counted apart)."""
    first = [t for t in result.trials if t.repeat == 0]
    by = Counter(t.outcome for t in first)
    return Counts(
        run=by["feasible"] + by["infeasible"] + by["failed"],
        feasible=by["feasible"],
        infeasible=by["infeasible"],
        failed=by["failed"],
        skipped=by["skipped"],
        repeats=len(result.trials) - len(first),
    )


def slo_status(record: TrialRecord) -> str:
    """``SLOs met at 2/2 levels`` plus the checks of the level the objective comes from."""
    levels = record.levels
    met = sum(1 for level in levels if level.feasible)
    text = f"SLOs met at {met}/{len(levels)} levels"
    level_key = record.objectives[0].level if record.objectives else None
    chosen = next((lv for lv in levels if f"{lv.scenario}@{lv.concurrency}" == level_key), None)
    if chosen is not None and chosen.checks:
        text += f" (at {level_key}: " + ", ".join(describe_check(c) for c in chosen.checks) + ")"
    return text


def no_feasible_message(result: StudyResult, *, limit: int = 20) -> str:
    """The verdict's failure: no config met the SLOs, and for each config why, with numbers."""
    first = [t for t in result.trials if t.repeat == 0]
    lines = [f"{result.spec_name}: no config met the SLOs; trials {counts(result)}"]
    for record in first[:limit]:
        label = "baseline " if record.baseline else ""
        lines.append(f"- {label}{explain(record)}")
    if len(first) > limit:
        lines.append(f"- ... {len(first) - limit} more in results.json")
    return "\n".join(lines)


def verdict_summary(result: StudyResult) -> str:
    """One paragraph per spec for the terminal summary: best config, objective, SLO status, trial counts."""
    best, baseline = result.best(), result.baseline()
    lines = [f"{result.spec_name} ({result.strategy}): trials {counts(result)}"]
    if best is None:
        lines.append("  no config met the SLOs")
    else:
        lines.append(f"  best: {best.config_id} [{best.config_hash}]: {objective_text(best)}")
        lines.append(f"  {slo_status(best)}")
        ranking = result.ranking
        estimate = ranking.estimate(best.config_hash) if ranking is not None else None
        if ranking is not None and estimate is not None and len(estimate.values) > 1:
            low, high = estimate.interval.low, estimate.interval.high
            span = f", {ranking.confidence:.0%} interval {low:.4g}-{high:.4g}" if low is not None and high else ""
            lines.append(f"  {estimate.mean:.4g} over {len(estimate.values)} measurements{span}")
        if ranking is not None:
            lines.append(f"  {tie_summary(ranking)}")
            lines.extend(f"    {note}" for note in ranking_notes(ranking))
        if baseline is not None and baseline is not best:
            if baseline.objective and best.objective is not None:
                lines.append(
                    f"  baseline {baseline.config_id}: {objective_text(baseline)}; "
                    f"best is {best.objective / baseline.objective - 1:+.1%}"
                )
            else:
                lines.append(f"  baseline {explain(baseline).splitlines()[0]}")
        if result.best_command:
            lines.append(f"  command: {result.best_command}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def verdict_properties(result: StudyResult, results_path: str | None) -> list[tuple[str, object]]:
    p = PROPERTY_PREFIX
    c = counts(result)
    props: list[tuple[str, object]] = [
        (f"{p}spec", result.spec_name),
        (f"{p}strategy", result.strategy),
        (f"{p}trials.run", c.run),
        (f"{p}trials.feasible", c.feasible),
        (f"{p}trials.infeasible", c.infeasible),
        (f"{p}trials.failed", c.failed),
        (f"{p}trials.skipped", c.skipped),
        (f"{p}summary", verdict_summary(result)),
    ]
    best = result.best()
    if best is not None:
        props.append((f"{p}best.config", best.config_id))
        props.append((f"{p}best.config_hash", best.config_hash))
        props.append((f"{p}best.slo", slo_status(best)))
        for objective in best.objectives:
            props.append((f"{p}best.objective.{objective.name.split(' ', 1)[-1]}", _number(objective.value)))
    if result.best_command:
        props.append((f"{p}best.command", result.best_command))
    if results_path:
        props.append((f"{p}results", results_path))
    return props
