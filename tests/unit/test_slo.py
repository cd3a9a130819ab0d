"""SLO judgement per level and the objective over feasible levels (pure; property-based where it matters)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotuner.bench.measurement import LevelFailure, LevelKey, Measurement, RequestSample
from autotuner.objective import evaluate, goodput
from autotuner.slo import SOFT_STEEPNESS, judge
from autotuner.spec import SLO, LatencySLO, ObjectiveTerm
from autotuner.units import Percentile

P90 = Percentile("p90", 0.9)
P50 = Percentile("p50", 0.5)


def sample(
    ttft: float, tpot: float = 0.02, e2e: float | None = None, tokens: int = 64, error: int | None = None
) -> RequestSample:
    if error is not None:
        return RequestSample(None, None, None, None, 64, None, error, "boom")
    e2e = ttft + tpot * (tokens - 1) if e2e is None else e2e
    return RequestSample(ttft, tpot, e2e, e2e - ttft, 64, tokens)


def level(
    ttfts: list[float], concurrency: int = 1, throughput: float = 100.0, errors: int = 0, rps: float = 1.0
) -> Measurement:
    samples = tuple(sample(t) for t in ttfts) + tuple(sample(0, error=500) for _ in range(errors))
    return Measurement(LevelKey("D(64,64)", concurrency), samples, 10.0, throughput, throughput * 2, rps)


def slo(ttft_p90: float = 1.0, hard: bool = True, error_rate: float = 0.0) -> SLO:
    return SLO.model_validate({"ttft": {"p90": f"{ttft_p90}s", "hard": hard}, "error_rate": error_rate})


def test_percentile_matches_numpy_linear_interpolation() -> None:
    m = level([0.1 * i for i in range(1, 11)])
    assert m.statistic("ttft", P90) == pytest.approx(0.91)
    assert m.statistic("ttft", P50) == pytest.approx(0.55)
    assert m.statistic("ttft", Percentile("mean", None)) == pytest.approx(0.55)
    assert m.statistic("ttft", Percentile("max", 1.0)) == pytest.approx(1.0)


def test_passing_and_missing_levels_with_violation_rate() -> None:
    ok = judge(slo(1.0), level([0.5] * 10))
    assert ok.feasible and ok.reasons == []
    bad = judge(slo(1.0), level([0.5] * 8 + [2.0, 3.0]))
    assert not bad.feasible
    (check,) = [c for c in bad.checks if c.metric == "ttft.p90"]
    assert check.violation_rate == pytest.approx(0.2)
    assert bad.reasons == ["D(64,64)@1: ttft.p90 2.10s <= 1.00s: MISSED, 20% of requests over"]


def test_error_rate_is_recomputed_and_judged() -> None:
    m = level([0.1] * 9, errors=1)
    assert m.error_rate == pytest.approx(0.1) and m.completed == 9 and m.errors == 1
    assert not judge(slo(error_rate=0.05), m).feasible
    assert judge(slo(error_rate=0.2), m).feasible


def test_failed_level_is_infeasible_with_its_reason() -> None:
    verdict = judge(slo(), LevelFailure(LevelKey("D(64,64)", 4), "no result file"))
    assert not verdict.feasible and verdict.reasons == ["D(64,64)@4: no result file"]


def test_soft_miss_costs_score_not_feasibility() -> None:
    verdict = judge(slo(1.0, hard=False), level([1.1] * 10))
    assert verdict.feasible
    assert verdict.soft_factor == pytest.approx(math.exp(-0.1 / SOFT_STEEPNESS))


def test_objective_takes_the_best_feasible_level_for_rates() -> None:
    spec_slo = slo(1.0)
    results = {m.key: m for m in (level([0.2] * 5, 1, 50.0), level([0.5] * 5, 4, 120.0), level([3.0] * 5, 8, 200.0))}
    verdicts = [judge(spec_slo, r) for r in results.values()]
    term = ObjectiveTerm.model_validate({"maximize": "output_throughput"})
    value = evaluate(term, results, verdicts, spec_slo)
    assert value.value == 120.0 and value.level == LevelKey("D(64,64)", 4)  # concurrency 8 broke the SLO


def test_objective_takes_the_worst_feasible_level_for_latency() -> None:
    spec_slo = slo(5.0)
    results = {m.key: m for m in (level([0.2] * 5, 1), level([0.5] * 5, 4))}
    verdicts = [judge(spec_slo, r) for r in results.values()]
    term = ObjectiveTerm.model_validate({"minimize": "ttft.p90"})
    assert evaluate(term, results, verdicts, spec_slo).value == pytest.approx(0.5)


def test_no_feasible_level_means_no_value_and_reasons() -> None:
    spec_slo = slo(0.1)
    results = {m.key: m for m in (level([0.2] * 5, 1),)}
    value = evaluate(
        ObjectiveTerm.model_validate({"maximize": "output_throughput"}),
        results,
        [judge(spec_slo, r) for r in results.values()],
        spec_slo,
    )
    assert value.value is None and value.reasons and "ttft.p90" in value.reasons[0]


def test_better_than_respects_direction_and_feasibility() -> None:
    spec_slo = slo(1.0)
    fast = {m.key: m for m in (level([0.2] * 5, 1, 80.0),)}
    slow = {m.key: m for m in (level([0.4] * 5, 1, 60.0),)}
    infeasible = {m.key: m for m in (level([2.0] * 5, 1, 500.0),)}
    for direction, metric in (("maximize", "output_throughput"), ("minimize", "ttft.p90")):
        term = ObjectiveTerm.model_validate({direction: metric})
        a, b, c = (
            evaluate(term, r, [judge(spec_slo, x) for x in r.values()], spec_slo) for r in (fast, slow, infeasible)
        )
        assert a.better_than(b) and not b.better_than(a)
        assert a.better_than(c) and not c.better_than(a)


def test_goodput_counts_requests_within_every_limit() -> None:
    m = level([0.5] * 6 + [2.0] * 4, rps=2.0)
    assert goodput(m, slo(1.0)) == pytest.approx(2.0 * 0.6)


latencies = st.lists(st.floats(min_value=0.001, max_value=10, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(latencies, st.floats(min_value=0.01, max_value=10), st.floats(min_value=0.01, max_value=10))
def test_tightening_a_threshold_never_makes_a_level_feasible(values: list[float], a: float, b: float) -> None:
    loose, tight = max(a, b), min(a, b)
    m = level(values)
    if not judge(slo(loose), m).feasible:
        assert not judge(slo(tight), m).feasible


@settings(max_examples=100, deadline=None)
@given(latencies, latencies, st.floats(min_value=0.01, max_value=10))
def test_a_levels_verdict_does_not_depend_on_other_levels(one: list[float], other: list[float], limit: float) -> None:
    spec_slo = slo(limit)
    alone = judge(spec_slo, level(one, 1))
    beside = [judge(spec_slo, m) for m in (level(other, 4), level(one, 1))][1]
    assert alone == beside


def test_latency_slo_accepts_several_statistics() -> None:
    rule = LatencySLO.model_validate({"p50": "1s", "p99": "3s", "hard": False})
    assert rule.limits == {P50: timedelta(seconds=1), Percentile("p99", 0.99): timedelta(seconds=3)}
