"""From measured records to intervals and a ranking: what the study, the report and the verdict all read (pure).

Two places where the numbers meet the statistics of ``autotuner.stats``:

- a level's intervals, from its per-request samples: ``output_throughput`` by Little's law (``c * sum(tokens) /
  sum(e2e)``, not quantized by the run's duration; genai-bench's own figure stays beside it in the record) and
  every SLO statistic (``ttft.p90`` ...);
- a study's ranking: every config's objective over all its measurements (first + repeats), the best with its
  tie-set, under the same rule racing uses (``stats.race_ranking``), so that what racing stops on is what the
  result says.

A config counts in the ranking while most of its measurements met the SLOs (``counts``), with the values of those
that did. On a loaded machine a config that is fine most of the time now and then "collapses" (a two-thread
llama.cpp run on 2 cores fell to 3-40 tok/s; the recorded landscape's two-thread configs missed the SLOs in 17 of
178 measurements, the one-thread ones in none of 168); dropping it for one such miss made racing demote the true
best whenever its repeat was the unlucky one, and the recorded landscape's truth is the same majority
(``benchmarks/sample_efficiency.py``). An even split is undecided: it does
not count in the result, but racing measures such a config again when it would lead, and the next measurement
decides. A config that met the SLOs in fewer than half of its measurements is not recommended.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .metric import RATE_METRICS
from .results import EstimateRecord, IntervalRecord, LevelRecord, RankingRecord, TrialRecord
from .spec import SLO, TuningSpec
from .stats import Interval, RacePolicy, Ranking, race_ranking, statistic_interval, throughput_interval
from .stats.racing import noise
from .wording import few

TIE_BREAK = (
    "the config with the best mean over its measurements (the most likely best); the other tied configs follow "
    "in order of their means, and the summary says when the baseline is among them"
)


def interval_record(interval: Interval) -> IntervalRecord:
    return IntervalRecord.model_validate(interval.finite_fields())


def level_intervals(level: LevelRecord, slo: SLO, confidence: float = 0.95) -> dict[str, IntervalRecord]:
    """Intervals of a measured level: throughput (Little's law) and each SLO statistic, from its samples."""
    samples = level.samples
    result: dict[str, IntervalRecord] = {}
    if (
        samples.output_tokens
        and len(samples.output_tokens) == len(samples.e2e_latency)
        and len(samples.e2e_latency) > 1
    ):
        result["output_throughput"] = interval_record(
            throughput_interval(samples.output_tokens, samples.e2e_latency, level.concurrency, confidence=confidence)
        )
        ones = [1.0] * len(samples.e2e_latency)
        result["requests_per_second"] = interval_record(
            throughput_interval(ones, samples.e2e_latency, level.concurrency, confidence=confidence)
        )
    for metric in ("ttft", "tpot", "e2e_latency"):
        rule = getattr(slo, metric)
        values = getattr(samples, metric)
        if rule is None or len(values) < 2:
            continue
        for statistic in rule.limits:
            result[f"{metric}.{statistic}"] = interval_record(
                statistic_interval(values, statistic, confidence=confidence)
            )
    return result


def counts(met: int, measured: int, *, undecided: bool = False) -> bool:
    """Whether a config with ``met`` of its ``measured`` measurements within the SLOs counts in the ranking: a
    strict majority (``undecided``: at least half, for choosing what racing measures next; see the module notes)."""
    missed = measured - met
    return met > 0 and (met > missed or (undecided and met == missed))


@dataclass(frozen=True)
class RaceState:
    """The ranking's input: per config (hash), its objective values in measuring order and what goes with them."""

    values: dict[str, list[float]]
    within: dict[str, list[Interval]] | None  # within-run intervals scaled to each value, when every one has one
    trials: dict[str, list[int]]
    config_ids: dict[str, str]


def race_state(spec: TuningSpec, records: Sequence[TrialRecord], *, undecided: bool = False) -> RaceState:
    """Group the study's records by config for the ranking (single objective only): the configs that count
    (``counts``; ``undecided``: even splits too), each with its values within the SLOs."""
    by_config: dict[str, list[TrialRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.repeat, r.number)):
        by_config[record.config_hash].append(record)
    values: dict[str, list[float]] = {}
    within: dict[str, list[Interval]] = {}
    complete_within = True
    trials: dict[str, list[int]] = {}
    ids: dict[str, str] = {}
    metric = spec.objective[0].metric.name
    for config_hash, measured in by_config.items():
        met = [r for r in measured if r.met_slos]
        if not counts(len(met), len(measured), undecided=undecided):
            continue
        measured = met
        values[config_hash] = [float(r.objective or 0.0) for r in measured]
        trials[config_hash] = [r.number for r in measured]
        ids[config_hash] = measured[0].config_id
        scaled = [_within(r, metric) for r in measured]
        if all(s is not None for s in scaled):
            within[config_hash] = [s for s in scaled if s is not None]
        else:
            complete_within = False
    return RaceState(values, within if complete_within else None, trials, ids)


def policy_for(spec: TuningSpec) -> RacePolicy:
    racing = spec.search.racing
    return RacePolicy(
        direction=spec.objective[0].direction, confidence=racing.confidence, max_repeats=racing.max_repeats
    )


def ranking(spec: TuningSpec, state: RaceState) -> RankingRecord | None:
    """The best config and its tie-set as a record, or None when no config is feasible.

    The recommended config is the leader, the best mean: among configs the data cannot tell apart it is the most
    likely best, and racing has re-measured it, so a lucky single value has been corrected. (Recommending the
    baseline whenever it is tied was tried: on a noisy machine nearly everything is tied with it after a few
    repeats, and the tool then named the baseline in 8 of 20 replays while a config 85% faster was known.)
    """
    if not state.values:
        return None
    policy = policy_for(spec)
    ranked: Ranking[str] = race_ranking(state.values, policy=policy, within=state.within)
    prior_cv, _df = noise(state.values, policy)
    order = sorted(ranked.estimates, key=lambda h: ranked.estimates[h].mean, reverse=policy.direction == "maximize")
    return RankingRecord(
        best=ranked.best,
        leader=ranked.leader,
        tie_set=list(ranked.tie_set),
        separated=ranked.separated,
        confidence=policy.confidence,
        rule=policy.rule,
        tie_break=TIE_BREAK,
        noise_cv=prior_cv,
        estimates=[
            EstimateRecord(
                config_hash=h,
                config_id=state.config_ids[h],
                trials=state.trials[h],
                values=state.values[h],
                mean=ranked.estimates[h].mean,
                interval=interval_record(ranked.estimates[h].interval),
                p_value=None if h == ranked.leader else ranked.p_values.get(h),
            )
            for h in order
        ],
    )


def _objective_level(record: TrialRecord) -> LevelRecord | None:
    level = record.objectives[0].level if record.objectives else None
    return next((lv for lv in record.levels if f"{lv.scenario}@{lv.concurrency}" == level), None)


def _within(record: TrialRecord, metric: str) -> Interval | None:
    """The objective's within-run interval on the value's own scale (the value may carry a soft-SLO factor or be
    genai-bench's figure): the relative bounds of the level's per-request interval applied to the value."""
    level = _objective_level(record)
    value = record.objective
    if level is None or value is None or metric not in RATE_METRICS:
        return None
    found = level.intervals.get(metric)
    if found is None or not found.estimate or found.low is None or found.high is None:
        return None
    scale = value / found.estimate
    return Interval(value, found.low * scale, found.high * scale, found.confidence, found.n, found.method)


def tie_summary(result_ranking: RankingRecord | None, baseline: str | None = None) -> str:
    """The headline's words: "best: X; Y and Z are within noise of it" (or "separated from every other config"),
    and whether the baseline (config hash ``baseline``) is among the tied: then no gain over it is established.
    Beyond three tied configs the rest are counted ("... and 17 more"): callers list every one below it."""
    if result_ranking is None:
        return "no config met the SLOs"
    names = {e.config_hash: e.config_id for e in result_ranking.estimates}
    best = names.get(result_ranking.best, result_ranking.best)
    others = [names.get(h, h) for h in result_ranking.tie_set if h != result_ranking.best]
    if not others:
        return f"best: {best}, separated from every other config ({result_ranking.confidence:.0%} confidence)"
    verb = "is" if len(others) == 1 else "are"
    text = f"best: {best}; {few(others)} {verb} within noise of it"
    if baseline is not None and baseline != result_ranking.best and baseline in result_ranking.tie_set:
        text += " (the baseline among them: no gain over it is established; measure more to tell them apart)"
    return text
