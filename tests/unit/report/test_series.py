"""What the charts show (info tuples), the baseline comparison's figures, and the Mermaid headline chart."""

from __future__ import annotations

import pytest

from autotuner.report import build_report, simple_comparison
from autotuner.report.comparison import mean_interval
from autotuner.report.mermaid import MAX_BARS, fenced, headline_chart
from autotuner.report.series import LatencyPoint, pareto_front, stage_kind

from .factory import large_study, sample_study, study


def point(number: int, throughput: float, latency: float, feasible: bool = True) -> LatencyPoint:
    return LatencyPoint(number, f"c{number}", "D@1", 1, throughput, latency, feasible, False, False)


def test_pareto_front_keeps_only_undominated_feasible_points() -> None:
    points = [
        point(0, 10, 1.0),
        point(1, 20, 2.0),
        point(2, 15, 3.0),
        point(3, 30, 0.5, feasible=False),
        point(4, 5, 0.5),
    ]
    assert [p.number for p in pareto_front(points)] == [4, 0, 1]


def test_latency_panels_follow_the_slos_with_their_thresholds() -> None:
    panels = build_report(sample_study()).panels
    assert [(p.metric, p.limit) for p in panels] == [("ttft.p90", 2.0), ("tpot.p90", 0.08), ("e2e_latency.p99", 10.0)]
    ttft = panels[0]
    assert len(ttft.points) == 7  # every measured (config, level); failed trials have none
    assert [(p.number, p.level) for p in ttft.front] == [(1, "D(64,64)@1"), (1, "D(64,64)@4")]
    assert all(p.best for p in ttft.points if p.number == 1)


def test_history_is_the_best_feasible_value_so_far() -> None:
    history = build_report(sample_study()).history
    assert [(h.number, h.value, h.best_so_far) for h in history] == [
        (0, 68.5, 68.5),
        (1, 126.3, 126.3),
        (2, 90.1, 126.3),
        (3, None, 126.3),
        (4, None, 126.3),
        (5, None, 126.3),
    ]


def test_objective_points_mark_the_best_and_the_baseline() -> None:
    points = build_report(sample_study()).points
    assert [(p.number, p.best, p.baseline, p.outcome) for p in points][:2] == [
        (0, False, True, "feasible"),
        (1, True, False, "feasible"),
    ]


def test_timeline_has_each_stage_relative_to_the_study_start_without_the_bench_wrapper() -> None:
    bars = build_report(sample_study()).timeline
    first = [(b.stage, b.kind) for b in bars if b.number == 0]
    assert first == [
        ("launch", "launch"),
        ("ready", "ready"),
        ("warmup", "warmup"),
        ("level D(64,64)@1", "level"),
        ("level D(64,64)@4", "level"),
        ("judge", "judge"),
        ("teardown", "teardown"),
    ]
    assert bars[0].start == 0.0
    assert [b.ok for b in bars if b.number == 4] == [True, False, True]  # OOM: ready failed
    assert stage_kind("bench") is None and stage_kind("teardown-warm") == "teardown" and stage_kind("x") == "other"


def test_percentile_series_compare_best_and_baseline_per_statistic() -> None:
    series = build_report(sample_study()).percentiles
    assert {(s.role, s.config_id) for s in series} == {
        ("best", "n-parallel=4,threads=2"),
        ("baseline", "n-parallel=1,threads=2"),
    }
    best_ttft_p90 = next(s for s in series if s.role == "best" and s.metric == "ttft" and s.statistic == "p90")
    assert best_ttft_p90.concurrency == (1, 4) and best_ttft_p90.values == (0.16, 0.92)
    assert len(series) == 2 * 3 * 3


def test_simple_comparison_best_against_the_baseline_files_best() -> None:
    current, baseline = sample_study(), sample_study()
    baseline.best_trial = 2
    comparison = simple_comparison(current, baseline)
    assert comparison is not None and comparison.verdict is None
    objective = comparison.rows[0]
    assert (objective.metric, objective.baseline.value, objective.current.value) == ("objective", 90.1, 126.3)
    assert objective.improved is True and objective.change == pytest.approx(126.3 / 90.1 - 1)
    metrics = [(r.metric, r.level) for r in comparison.rows[1:5]]
    assert metrics == [
        ("output_throughput", "D(64,64)@1"),
        ("ttft.mean", "D(64,64)@1"),
        ("tpot.mean", "D(64,64)@1"),
        ("e2e_latency.mean", "D(64,64)@1"),
    ]
    ttft = comparison.rows[2]
    assert ttft.current.low is not None and ttft.current.high is not None
    assert ttft.current.low < ttft.current.value < ttft.current.high
    assert comparison.notes == ()


def test_simple_comparison_says_when_environments_differ_and_needs_two_bests() -> None:
    current, baseline = sample_study(), sample_study()
    assert baseline.environment is not None
    baseline.environment.cpu = "Intel Xeon"
    comparison = simple_comparison(current, baseline)
    assert comparison is not None and comparison.notes == ("environment differs: cpu was Intel Xeon, now AMD EPYC",)
    baseline.best_trial = None
    assert simple_comparison(current, baseline) is None
    data = build_report(current, baseline=baseline)
    assert data.comparison is None


def test_mean_interval() -> None:
    assert mean_interval([]) is None
    single = mean_interval([2.0])
    assert single is not None and single.low is None
    estimate = mean_interval([1.0, 2.0, 3.0])
    assert estimate is not None and estimate.value == 2.0
    assert estimate.low == pytest.approx(2.0 - 1.959964 / 3**0.5, rel=1e-5)


def test_mermaid_headline_chart_shows_the_best_trials() -> None:
    chart = headline_chart(build_report(sample_study()))
    assert chart.splitlines() == [
        "xychart-beta",
        '    title "smollm2-cpu: output_throughput of the best 3 trials (3 more not shown)"',
        '    x-axis "trial" ["#1 best", "#2", "#0 baseline"]',
        '    y-axis "output_throughput (tokens/s)" 0 --> 138.9',
        "    bar [126.3, 90.1, 68.5]",
    ]
    assert fenced(build_report(sample_study())).startswith("```mermaid\nxychart-beta\n")


def test_mermaid_is_bounded_and_empty_without_feasible_trials() -> None:
    chart = headline_chart(build_report(large_study(300)))
    assert chart.count('"#') == MAX_BARS
    none = [t for t in sample_study().trials if t.outcome != "feasible"]
    assert fenced(build_report(study(none, best=None, baseline=None))) == ""


def test_simple_comparison_uses_recorded_level_intervals_when_both_have_them() -> None:
    from autotuner.results import IntervalRecord

    current, baseline = sample_study(), sample_study()
    baseline.best_trial = 2
    for result in (current, baseline):
        best = result.best()
        assert best is not None
        for lv in best.levels:
            tput = lv.output_throughput or 0.0
            ttft = lv.stats["ttft.p90"] or 0.0
            lv.intervals = {
                "output_throughput": IntervalRecord(
                    estimate=tput, low=tput * 0.9, high=tput * 1.1, confidence=0.95, n=12, method="little"
                ),
                "ttft.p90": IntervalRecord(
                    estimate=ttft, low=ttft * 0.8, high=ttft * 1.2, confidence=0.95, n=12, method="binomial"
                ),
            }
    comparison = simple_comparison(current, baseline)
    assert comparison is not None
    rows = [(r.metric, r.level, r.current.low is not None) for r in comparison.rows]
    assert rows == [
        ("objective", "", False),
        ("output_throughput", "D(64,64)@1", True),
        ("ttft.p90", "D(64,64)@1", True),
        ("output_throughput", "D(64,64)@4", True),
        ("ttft.p90", "D(64,64)@4", True),
    ]
    assert comparison.rows[2].current.high == pytest.approx(0.16 * 1.2)
