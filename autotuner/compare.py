"""Did this change make serving slower or break an SLO? Baseline comparison and its verdicts (pure).

The baseline is the main branch's result for a spec (``reports/<spec>/baseline.json``, see baseline.py): its best
config (arm A) with every measurement of it. The current run's best config is arm B. Two ways to get A's numbers:

- ``ab`` (same-runner A/B, preferred): the current run measures A again next to B on the same machine,
  interleaved A B B A A B ... (the order alternates each round so linear drift hits both arms alike: ab.py), and
  only those interleaved measurements are compared. Machine drift cancels; the verdict answers "is the config this
  run recommends as good as main's, here and now".
- ``stored``: A's numbers as stored in the baseline (another machine or another day), B's as measured in this run.
  Said so in every output: drift between the two runs is not cancelled.

Statistics. Each metric is compared on its per-repeat values (one value per measurement): the objective, and per
level every SLO statistic (``ttft.p90`` ...). The interval is ``stats.relative_change``: a log-ratio t-interval on
the repeat means with Welch degrees of freedom, the per-repeat noise shrunk toward the machine's noise prior, and
each repeat's within-run interval (from its per-request samples: BCa bootstrap for throughput, order statistics for
percentiles) as a floor. Why not a bootstrap or a rank test over all requests: between-run noise (4-17% on the CPU
default) dominates which requests landed in a run, so tests over pooled requests are overconfident (their
intervals leave the between-run noise out); a rank test on 2-5 repeat values cannot reach 95% at all. The same
interval names the best config (tie-set) and its gain over the baseline config, so the three agree.

The verdict rule, per metric, with ``t`` the spec's ``regression.threshold`` (the change that matters) and the
interval at ``regression.confidence``; "worse" is lower for a maximized metric, higher for a latency:

- ``regressed``: worse with confidence (the whole interval is on the worse side of 0) AND the point estimate is
  worse than ``t``;
- ``inconclusive``: the point estimate is worse than ``t`` but the interval still reaches 0 (rerun with more
  repeats): never a silent pass;
- ``improved``: the mirror of regressed;
- ``unchanged``: everything else (no change beyond ``t`` by the best estimate, or not shown).

Why not "the whole interval beyond t" (an equivalence-style rule): at a true 10% slowdown with a 5% threshold it
detects only when the interval's half-width is under ~1.4% of the value, which at a 7% per-repeat noise takes
~50 repeats per arm. The rule above keeps the false-alarm rate of an unchanged config at most (1 - confidence) / 2
(one side of the interval) while the noise is near the prior (at twice the prior's 7%, 2-5 rounds reach 6-9%) and detects a true change of 2x the threshold with ~95% probability once the
interval's half-width is under ~half the change (benchmarks/regression_accuracy.py prints both rates).

SLO metrics are many comparisons (statistics x levels): their intervals use a Bonferroni-adjusted confidence so
the family keeps the objective's error rate, and the overall false-alarm rate of an unchanged run stays <= 5% at
95%. A config that met the SLOs on main and misses them now is ``regressed`` whatever the intervals say; so is a
run in which no config meets the SLOs any more. SLO metrics compare repeat values without the throughput prior
(``prior_df=0``: the machine's 7% throughput noise says little about a p90 of a dozen requests), floored by their
within-run intervals. Overall: ``regressed`` if an objective or an SLO metric regressed or an SLO is newly
missed; else ``inconclusive`` if an objective is (an SLO metric's inconclusive is shown, not propagated: small-
sample percentiles would make most runs inconclusive); else ``improved`` if the objective improved; else
``unchanged``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from .stats import ConfigEstimate, Interval, estimate_config, relative_change_of

if TYPE_CHECKING:
    from .results import Environment, LevelRecord, StudyResult, TrialRecord

Verdict = Literal["improved", "unchanged", "regressed", "inconclusive"]
Mode = Literal["ab", "stored"]
Direction = Literal["maximize", "minimize"]
RULE = (
    "regressed: worse with confidence and the estimate beyond the threshold; inconclusive: the estimate beyond "
    "the threshold but the interval reaches 0; SLO metrics Bonferroni-adjusted"
)
LATENCIES = ("ttft", "tpot", "e2e_latency")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Figure(_Model):
    """A value with its interval (a config's mean over its repeats, or a relative change); None: unknown."""

    estimate: float | None
    low: float | None = None
    high: float | None = None
    confidence: float
    n: int = 0
    method: str = ""

    @classmethod
    def of(cls, interval: Interval) -> Figure:
        return cls.model_validate(interval.finite_fields())


class MetricVerdict(_Model):
    """One metric: both arms' values, the relative change ``current / baseline - 1`` with its interval, the verdict."""

    metric: str  # "output_throughput" (an objective) or "ttft.p90"
    level: str | None = None  # "D(64,64)@4" for SLO metrics; None for an objective
    direction: Direction
    baseline_values: list[float] = Field(default_factory=list)
    current_values: list[float] = Field(default_factory=list)
    baseline: Figure | None = None
    current: Figure | None = None
    change: Figure | None = None
    verdict: Verdict
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.level} {self.metric}" if self.level else self.metric


class Comparison(_Model):
    """The answer to "did this change make serving slower or break an SLO", as stored in ``results.json``."""

    mode: Mode
    verdict: Verdict
    threshold: float
    confidence: float
    rule: str = RULE
    baseline_source: str = ""  # the baseline file, or the run it came from
    baseline_config_id: str | None = None
    baseline_config_hash: str | None = None
    current_config_id: str | None = None
    current_config_hash: str | None = None
    config_changed: bool = False
    spec_changed: bool = False
    baseline_trials: list[int] = Field(default_factory=list)  # trial numbers of arm A (this run's in "ab" mode)
    current_trials: list[int] = Field(default_factory=list)
    objectives: list[MetricVerdict] = Field(default_factory=list)
    slo_metrics: list[MetricVerdict] = Field(default_factory=list)
    slo_findings: list[str] = Field(default_factory=list)  # SLOs newly missed, no feasible config any more
    mismatch: list[str] = Field(default_factory=list)  # environment differences (allowed only when asked for)
    warnings: list[str] = Field(default_factory=list)  # shown loudly in every output
    notes: list[str] = Field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.verdict in ("regressed", "inconclusive")


# --------------------------------------------------------------------------------------------------- verdicts
def judge(change: Interval, direction: Direction, threshold: float) -> tuple[Verdict, str]:
    """The verdict of one relative change (``current / baseline - 1``) under the module's rule, with its reason."""
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    sign = 1.0 if direction == "maximize" else -1.0
    gain = sign * change.estimate  # > 0: better
    better_low, better_high = sorted((sign * change.low, sign * change.high))  # the interval of the gain
    shown = f"{change.estimate:+.1%} [{change.low:+.1%}, {change.high:+.1%}]"
    if gain < -threshold:
        if better_high < 0:
            return "regressed", f"{shown}: worse than the {threshold:.0%} threshold, with confidence"
        return (
            "inconclusive",
            f"{shown}: looks worse than {threshold:.0%} but the interval reaches 0: rerun with more repeats",
        )
    if gain > threshold and better_low > 0:
        return "improved", f"{shown}: better than the {threshold:.0%} threshold, with confidence"
    if gain > threshold:
        return "unchanged", f"{shown}: looks better, not confirmed"
    return "unchanged", f"{shown}: within the {threshold:.0%} threshold"


def overall(objectives: Sequence[Verdict], slo_metrics: Sequence[Verdict] = (), slo_missed: bool = False) -> Verdict:
    """Regressed if an objective or an SLO metric regressed or an SLO is newly missed; else inconclusive if an
    objective is; else improved if the (first) objective improved; else unchanged.

    An SLO metric's ``inconclusive`` is shown with it but does not make the whole run inconclusive: percentiles of a
    level's few requests are noisy enough that most runs would be, and the SLO itself is judged by the findings."""
    seen = set(objectives) | {v for v in slo_metrics if v == "regressed"}
    if slo_missed or "regressed" in seen:
        return "regressed"
    if "inconclusive" in seen:
        return "inconclusive"
    return "improved" if objectives and objectives[0] == "improved" else "unchanged"


def compare_values(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    direction: Direction,
    threshold: float,
    confidence: float,
    baseline_within: Sequence[Interval] | None = None,
    current_within: Sequence[Interval] | None = None,
    metric: str = "objective",
    level: str | None = None,
    prior: bool = True,
) -> MetricVerdict:
    """One metric's comparison from both arms' per-repeat values (and, when known, their within-run intervals)."""
    common = {"metric": metric, "level": level, "direction": direction}
    values_a, values_b = [float(v) for v in baseline], [float(v) for v in current]
    if not values_a or not values_b:
        missing = "main's config" if not values_a else "this run's config"
        return MetricVerdict(
            **common,
            baseline_values=values_a,
            current_values=values_b,
            verdict="regressed" if not values_b else "inconclusive",
            reason=f"no feasible measurement of {missing}",
        )
    a = _estimate(values_a, baseline_within, confidence, prior)
    b = _estimate(values_b, current_within, confidence, prior)
    if a.mean <= 0 or b.mean <= 0:
        return MetricVerdict(
            **common,
            baseline_values=values_a,
            current_values=values_b,
            verdict="unchanged" if a.mean == b.mean else "inconclusive",
            reason="a relative change needs positive values",
        )
    change = relative_change_of(a, b, confidence=confidence)
    verdict, reason = judge(change, direction, threshold)
    return MetricVerdict(
        **common,
        baseline_values=values_a,
        current_values=values_b,
        baseline=Figure.of(a.interval),
        current=Figure.of(b.interval),
        change=Figure.of(change),
        verdict=verdict,
        reason=reason,
    )


def _estimate(values: list[float], within: Sequence[Interval] | None, confidence: float, prior: bool) -> ConfigEstimate:
    usable = within if within is not None and len(within) == len(values) else None
    if usable is not None and not all(math.isfinite(w.low) and math.isfinite(w.high) for w in usable):
        usable = None  # an unknown within-run interval (too few requests) must not make the noise infinite
    if prior:
        return estimate_config(values, usable, confidence=confidence)
    return estimate_config(values, usable, confidence=confidence, prior_df=0.0)


# --------------------------------------------------------------------------------------------------- records
def _feasible(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [r for r in records if r.met_slos]


def _objective_level(record: TrialRecord, index: int) -> LevelRecord | None:
    level = record.objectives[index].level if len(record.objectives) > index else None
    return next((lv for lv in record.levels if f"{lv.scenario}@{lv.concurrency}" == level), None)


def _within(record: TrialRecord, index: int) -> Interval | None:
    """The objective's within-run interval on its value's scale (relative bounds of the level's interval)."""
    objective = record.objectives[index]
    metric = objective.name.split(" ", 1)[-1]
    level = _objective_level(record, index)
    found = level.intervals.get(metric) if level is not None else None
    if objective.value is None or found is None or not found.estimate or found.low is None or found.high is None:
        return None
    scale = objective.value / found.estimate
    low, high = sorted((found.low * scale, found.high * scale))
    return Interval(objective.value, low, high, found.confidence, found.n, found.method)


def _all_within(found: Sequence[Interval | None]) -> list[Interval] | None:
    """Every record's within-run interval, or None when any is missing (then none is used: no partial floors)."""
    known = [w for w in found if w is not None]
    return known if found and len(known) == len(found) else None


def objective_verdicts(
    a: Sequence[TrialRecord], b: Sequence[TrialRecord], objectives: Sequence[str], threshold: float, confidence: float
) -> list[MetricVerdict]:
    """Each objective (``"maximize output_throughput"``) over both arms' feasible measurements."""
    fa, fb = _feasible(a), _feasible(b)
    verdicts = []
    for index, name in enumerate(objectives):
        direction_text, _, metric = name.partition(" ")
        direction: Direction = "minimize" if direction_text == "minimize" else "maximize"
        ra = [r for r in fa if len(r.objectives) > index and r.objectives[index].value is not None]
        rb = [r for r in fb if len(r.objectives) > index and r.objectives[index].value is not None]
        verdicts.append(
            compare_values(
                [float(r.objectives[index].value or 0.0) for r in ra],
                [float(r.objectives[index].value or 0.0) for r in rb],
                direction=direction,
                threshold=threshold,
                confidence=confidence,
                baseline_within=_all_within([_within(r, index) for r in ra]),
                current_within=_all_within([_within(r, index) for r in rb]),
                metric=metric or name,
            )
        )
    return verdicts


def slo_metric_verdicts(
    a: Sequence[TrialRecord], b: Sequence[TrialRecord], threshold: float, confidence: float
) -> list[MetricVerdict]:
    """Per level measured in every feasible measurement of both arms, each latency statistic an SLO checks.

    The confidence is Bonferroni-adjusted over these comparisons (see the module notes)."""
    fa, fb = _feasible(a), _feasible(b)
    if not fa or not fb:
        return []
    pairs: list[tuple[str, str]] = []
    for level in fb[0].levels:
        key = f"{level.scenario}@{level.concurrency}"
        for check in level.checks:
            if check.metric.split(".")[0] in LATENCIES and (key, check.metric) not in pairs:
                pairs.append((key, check.metric))
    usable = [(key, metric) for key, metric in pairs if all(_stat(r, key, metric) is not None for r in (*fa, *fb))]
    if not usable:
        return []
    adjusted = 1.0 - (1.0 - confidence) / len(usable)
    verdicts = []
    for key, metric in usable:
        verdicts.append(
            compare_values(
                [_stat(r, key, metric) or 0.0 for r in fa],
                [_stat(r, key, metric) or 0.0 for r in fb],
                direction="minimize",
                threshold=threshold,
                confidence=adjusted,
                baseline_within=_all_within([_level_within(r, key, metric) for r in fa]),
                current_within=_all_within([_level_within(r, key, metric) for r in fb]),
                metric=metric,
                level=key,
                prior=False,
            )
        )
    return verdicts


def _level(record: TrialRecord, key: str) -> LevelRecord | None:
    return next((lv for lv in record.levels if f"{lv.scenario}@{lv.concurrency}" == key and lv.failure is None), None)


def _stat(record: TrialRecord, key: str, metric: str) -> float | None:
    level = _level(record, key)
    value = level.stats.get(metric) if level is not None else None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _level_within(record: TrialRecord, key: str, metric: str) -> Interval | None:
    """The statistic's within-run interval recorded with the level (its own confidence: a floor on the noise)."""
    level = _level(record, key)
    found = level.intervals.get(metric) if level is not None else None
    if found is None or found.estimate is None or found.low is None or found.high is None:
        return None
    return Interval(found.estimate, found.low, found.high, found.confidence, found.n, found.method)


def slo_findings(
    baseline_config: str, a: Sequence[TrialRecord], b: Sequence[TrialRecord], current_has_best: bool
) -> list[str]:
    """SLOs newly missed: main's best met them on main by definition, so any miss of it now is a regression;
    a miss of the recommended config on a re-measurement, or no feasible config at all, too."""
    findings = []
    if not current_has_best:
        findings.append(f"no config meets the SLOs now; main's best ({baseline_config}) did")
    for record in a:
        if record.outcome != "feasible":
            findings.append(
                f"main's best config {record.config_id} met the SLOs on main and misses them now "
                f"(trial {record.number}, {record.outcome}: {record.reason})"
            )
    for record in b:
        if record.outcome != "feasible":
            findings.append(
                f"the recommended config {record.config_id} missed the SLOs on a re-measurement "
                f"(trial {record.number}, {record.outcome}: {record.reason})"
            )
    return findings


# --------------------------------------------------------------------------------------------------- whole results
def environment_mismatch(baseline: Environment | None, current: Environment | None) -> list[str]:
    """What makes numbers incomparable: hardware (CPU model and count, GPU models and count) and the engine
    (runtime and version, or image). The host name, Python and memory size may differ between runners."""
    if baseline is None or current is None:
        return [
            "the environment is unknown (no fingerprint in " + ("the baseline)" if baseline is None else "the run)")
        ]
    found = []
    if baseline.cpu != current.cpu or baseline.cpus != current.cpus:
        found.append(f"CPU: {baseline.cpus} x {baseline.cpu} on main, {current.cpus} x {current.cpu} now")
    if sorted(_gpu_model(g) for g in baseline.gpus) != sorted(_gpu_model(g) for g in current.gpus):
        found.append(
            f"GPUs: {len(baseline.gpus)} ({', '.join(baseline.gpus) or 'none'}) on main, "
            f"{len(current.gpus)} ({', '.join(current.gpus) or 'none'}) now"
        )
    if baseline.engine != current.engine:
        found.append(f"engine: {baseline.engine} on main, {current.engine} now")
    return found


def _gpu_model(line: str) -> str:
    """``GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)`` -> the model: UUIDs differ between identical runners."""
    text = line.split("(UUID", 1)[0]
    return text.split(":", 1)[1].strip() if ":" in text else text.strip()


def environment_notes(baseline: Environment | None, current: Environment | None) -> list[str]:
    """Differences that do not refuse a comparison but may move numbers: say them."""
    if baseline is None or current is None:
        return []
    notes = []
    if baseline.genai_bench != current.genai_bench:
        notes.append(f"genai-bench {baseline.genai_bench} on main, {current.genai_bench} now")
    if baseline.tool_version != current.tool_version:
        notes.append(f"autotuner {baseline.tool_version} on main, {current.tool_version} now")
    return notes


def compare_results(
    baseline: StudyResult,
    current: StudyResult,
    *,
    threshold: float,
    confidence: float,
    mode: Mode,
    baseline_records: Sequence[TrialRecord] | None = None,
    current_records: Sequence[TrialRecord] | None = None,
    allow_mismatch: bool = False,
    source: str = "",
) -> Comparison:
    """The comparison of ``current`` (this run) with ``baseline`` (main's result).

    ``ab``: pass the interleaved measurements of both arms (this run's records). ``stored``: by default arm A is
    every measurement of the baseline's best config in the baseline, arm B every measurement of this run's best.
    A mismatched environment is refused (``ValueError``) unless ``allow_mismatch``; then it is a warning.
    """
    base_best = baseline.best()
    if base_best is None:
        raise ValueError(f"the baseline {source or baseline.study_name} has no best config (none met the SLOs)")
    mismatch = environment_mismatch(baseline.environment, current.environment)
    if mismatch and not allow_mismatch:
        raise ValueError("the baseline was measured elsewhere: " + "; ".join(mismatch))
    best = current.best()
    a = list(baseline_records) if baseline_records is not None else _records_of(baseline, base_best.config_hash)
    if current_records is not None:
        b = list(current_records)
    else:
        b = _records_of(current, best.config_hash) if best is not None else []
    warnings = [f"WARNING: comparing across environments ({m}): the verdict may reflect the machine" for m in mismatch]
    notes = environment_notes(baseline.environment, current.environment)
    if mode == "stored":
        notes.insert(0, "compared with the baseline's stored numbers: machine drift between the runs is not cancelled")
    if mode == "stored" and best is not None:
        # this run may have measured main's config too: a miss of it now is a finding in stored mode as well
        a_now = [r for r in current.trials if r.config_hash == base_best.config_hash]
    else:
        a_now = a if mode == "ab" else []
    spec_changed = baseline.spec_digest != current.spec_digest
    if spec_changed:
        notes.append(
            f"the spec changed since the baseline (digest {baseline.spec_digest[:12]} -> {current.spec_digest[:12]})"
            + (": both configs were measured now under this spec" if mode == "ab" else "")
        )
    if baseline.objectives != current.objectives:
        warnings.append(f"WARNING: objectives differ: {baseline.objectives} on main, {current.objectives} now")
    objectives = objective_verdicts(a, b, current.objectives, threshold, confidence) if best is not None else []
    if baseline.objectives != current.objectives:
        objectives = []  # values of different objectives are not comparable
    slo_metrics = slo_metric_verdicts(a, b, threshold, confidence) if best is not None else []
    findings = slo_findings(base_best.config_id, a_now, b if mode == "ab" else [], best is not None)
    objective_verdict_list: list[Verdict] = [m.verdict for m in objectives]
    if best is not None and not objectives and not findings:
        objective_verdict_list.append("inconclusive")
        notes.append("no objective could be compared")
    compared = b[0] if b else best  # the config this run recommended when it was compared
    changed = compared is not None and compared.config_hash != base_best.config_hash
    if changed and compared is not None:
        notes.append(f"the recommended config changed: {base_best.config_id} on main, {compared.config_id} now")
    return Comparison(
        mode=mode,
        verdict=overall(objective_verdict_list, [m.verdict for m in slo_metrics], bool(findings)),
        threshold=threshold,
        confidence=confidence,
        baseline_source=source,
        baseline_config_id=base_best.config_id,
        baseline_config_hash=base_best.config_hash,
        current_config_id=compared.config_id if compared is not None else None,
        current_config_hash=compared.config_hash if compared is not None else None,
        config_changed=changed,
        spec_changed=spec_changed,
        baseline_trials=[r.number for r in a],
        current_trials=[r.number for r in b],
        objectives=objectives,
        slo_metrics=slo_metrics,
        slo_findings=findings,
        mismatch=mismatch,
        warnings=warnings,
        notes=notes,
    )


def _records_of(result: StudyResult, config_hash: str) -> list[TrialRecord]:
    return sorted((r for r in result.trials if r.config_hash == config_hash), key=lambda r: (r.repeat, r.number))


# --------------------------------------------------------------------------------------------------- text
EXIT_REGRESSED, EXIT_INCONCLUSIVE = 6, 7


def exit_code(comparison: Comparison) -> int:
    """0 unchanged or improved, 6 regressed, 7 inconclusive (never a silent pass: rerun with more repeats)."""
    return {"regressed": EXIT_REGRESSED, "inconclusive": EXIT_INCONCLUSIVE}.get(comparison.verdict, 0)


def _figure(figure: Figure | None) -> str:
    if figure is None or figure.estimate is None:
        return "-"
    return f"{figure.estimate:.4g}"


def _change(figure: Figure | None) -> str:
    if figure is None or figure.estimate is None:
        return "-"
    low = "?" if figure.low is None else f"{figure.low:+.1%}"
    high = "?" if figure.high is None else f"{figure.high:+.1%}"
    return f"{figure.estimate:+.1%} [{low}, {high}]"


def format_comparison(comparison: Comparison) -> str:
    """The verdict table for terminals and logs; warnings first and last, so they cannot be missed."""
    how = {
        "ab": f"same-runner A/B ({len(comparison.current_trials)} interleaved rounds)",
        "stored": "against the baseline's stored numbers",
    }[comparison.mode]
    lines = list(comparison.warnings)
    lines.append(
        f"regression check {how}: threshold {comparison.threshold:.0%}, confidence {comparison.confidence:.0%}"
    )
    lines.append(
        f"  main: {comparison.baseline_config_id}   now: {comparison.current_config_id or '(no feasible config)'}"
    )
    rows = [
        (m.label, _figure(m.baseline), _figure(m.current), _change(m.change), m.verdict) for m in comparison.objectives
    ]
    rows += [
        (m.label, _figure(m.baseline), _figure(m.current), _change(m.change), m.verdict) for m in comparison.slo_metrics
    ]
    header = ("metric", "main", "now", "change [interval]", "verdict")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    lines += [f"  SLO: {finding}" for finding in comparison.slo_findings]
    lines += [f"  note: {note}" for note in comparison.notes]
    lines.append(f"verdict: {comparison.verdict.upper()}" + _advice(comparison))
    lines += comparison.warnings
    return "\n".join(lines)


def _advice(comparison: Comparison) -> str:
    if comparison.verdict == "inconclusive":
        return " (the data cannot tell: rerun with more repeats, e.g. --ab-rounds)"
    if comparison.verdict == "regressed":
        worse = [m.label for m in (*comparison.objectives, *comparison.slo_metrics) if m.verdict == "regressed"]
        return f" ({', '.join(worse + (['SLOs'] if comparison.slo_findings else []))})"
    return ""
