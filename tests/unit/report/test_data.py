"""Report data: the best config, its gain over the baseline config, why each other config lost, the order."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from autotuner.report import build_report, render_markdown
from autotuner.report.data import launcher_of
from autotuner.report.headline import objective_info
from autotuner.results import ObjectiveRecord, StudyResult
from autotuner.summary import summarize

from .factory import large_study, level, sample_study, study, trial, with_ranking


def test_headline_names_the_best_config_and_its_gain_over_the_baseline_config() -> None:
    h = build_report(sample_study()).headline
    assert (h.best_number, h.best_config_id, h.best_value, h.best_level) == (
        1,
        "n-parallel=4,threads=2",
        126.3,
        "D(64,64)@4",
    )
    assert (h.baseline_number, h.baseline_value) == (0, 68.5)
    assert h.gain == pytest.approx(126.3 / 68.5 - 1) and h.improved is True
    assert h.slo_met and h.slo_status == "met at 2 of 2 levels (D(64,64)@1, D(64,64)@4)"
    assert h.outcomes == (("feasible", 3), ("infeasible", 1), ("failed", 2))
    assert h.elapsed == 378.0
    assert (
        h.summary
        == "smollm2-cpu: best n-parallel=4,threads=2: output_throughput 126.3 tokens/s, +84.4% vs baseline config"
    )


def test_trials_are_sorted_by_objective_then_infeasible_failed_skipped() -> None:
    rows = build_report(sample_study()).trials
    assert [r.number for r in rows] == [1, 2, 0, 3, 4, 5]
    assert [r.rank for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r.best for r in rows] == [True, False, False, False, False, False]
    assert rows[2].baseline


def test_sorting_follows_the_direction_of_a_minimized_objective() -> None:
    result = sample_study()
    name = "minimize e2e_latency.p99"
    for t, value in zip(result.trials[:3], (4.47, 3.22, 5.1), strict=True):
        t.objectives = [ObjectiveRecord(name=name, value=value, level="D(64,64)@4")]
    result.objectives = [name]
    data = build_report(result)
    assert [r.number for r in data.trials][:3] == [1, 0, 2]
    assert data.headline.gain == pytest.approx(3.22 / 4.47 - 1) and data.headline.improved is True
    slower = next(r for r in data.trials if r.number == 2)
    assert slower.loss.gap == pytest.approx(3.22 / 5.1 - 1)  # 37% worse, in the better direction


def test_an_slo_miss_says_which_slo_at_which_level_by_how_much() -> None:
    loss = next(r for r in build_report(sample_study()).trials if r.number == 3).loss
    assert loss.kind == "slo"
    first = loss.misses[0]
    assert (first.metric, first.level, first.limit, first.hard) == ("ttft.p90", "D(64,64)@1", 2.0, True)
    assert first.measured == pytest.approx(2.6) and first.overshoot == pytest.approx(0.3)
    assert [m.metric for m in loss.misses] == ["ttft.p90", "e2e_latency.p99"]  # hardest miss first
    assert loss.summary == "ttft.p90 2.60 s > 2.00 s at D(64,64)@1 (+30%, 25% of requests over) (+1 more)"


def test_failed_trials_lose_with_their_failure_kind() -> None:
    rows = {r.number: r for r in build_report(sample_study()).trials}
    assert rows[4].loss.kind == "failed" and rows[4].failure_kind == "oom"
    assert rows[4].loss.summary == "oom: engine exited with code 1 before it was ready (pid 5891)"
    assert rows[5].loss.summary == "timeout: not ready after 120s"


def test_a_slower_feasible_config_loses_by_its_gap_and_says_what_limited_it() -> None:
    rows = {r.number: r for r in build_report(sample_study()).trials}
    assert rows[2].loss.kind == "lower-objective"
    assert rows[2].loss.gap == pytest.approx(90.1 / 126.3 - 1)
    assert rows[2].loss.summary == "objective -28.7% vs best"
    baseline = rows[0].loss
    assert baseline.misses[0].metric == "ttft.p90" and baseline.misses[0].level == "D(64,64)@4"
    assert baseline.summary.endswith("limited by ttft.p90 3.85 s > 2.00 s at D(64,64)@4 (+92%, 40% of requests over)")


def test_a_level_that_produced_no_measurement_is_the_reason() -> None:
    from .factory import failed_level

    t = trial(7, {"n-parallel": 2}, [failed_level(1, "all 12 requests failed: connection refused")])
    data = build_report(study([t], best=None, baseline=None))
    assert data.trials[0].loss.kind == "level-failure"
    assert data.trials[0].loss.summary == "D(64,64)@1: all 12 requests failed: connection refused"


def test_no_feasible_config() -> None:
    trials = [t for t in sample_study().trials if t.outcome != "feasible"]
    data = build_report(study(trials, best=None, baseline=None))
    h = data.headline
    assert not h.slo_met and h.best_config_id is None and h.gain is None
    assert h.slo_status == "no config met the SLOs (1 infeasible, 2 failed)"
    assert h.summary == "smollm2-cpu: no config met the SLOs (3 trials)"
    assert data.command is None and data.best_levels == ()


def test_baseline_notes_when_there_is_no_gain_to_show() -> None:
    result = sample_study()
    result.baseline_trial = 1
    assert build_report(result).headline.baseline_note == "the baseline config is the best config"
    result.baseline_trial = 3
    note = build_report(result).headline.baseline_note
    assert note.startswith("the baseline config (trial 3) is infeasible: ttft.p90 2.60 s > 2.00 s at D(64,64)@1")
    result.baseline_trial = None
    assert build_report(result).headline.baseline_note == "no baseline config was measured in this run"


def test_best_levels_carry_checks_with_their_margin() -> None:
    levels = build_report(sample_study()).best_levels
    assert [lv.level for lv in levels] == ["D(64,64)@1", "D(64,64)@4"]
    assert [lv.chosen for lv in levels] == [False, True]
    ttft = levels[1].checks[0]
    assert (ttft.metric, ttft.limit, ttft.passed) == ("ttft.p90", 2.0, True)
    assert ttft.margin == pytest.approx(1 - 0.92 / 2.0)


def test_soft_misses_of_the_best_config_show_in_the_slo_status() -> None:
    result = sample_study()
    result.best_trial = 2  # its D(64,64)@4 has tpot.p90 90 ms against a soft 80 ms
    assert "soft misses: tpot.p90 90 ms > 80 ms at D(64,64)@4 (+12%) (soft)" in build_report(result).headline.slo_status


def test_log_paths_are_relative_to_the_run_folder_when_inside_it() -> None:
    rows = build_report(sample_study(), run_dir=Path("/runs/smollm2-cpu/run-1")).trials
    assert rows[0].engine_log == "trial-001-c000000001/trial-001.engine.log"
    elsewhere = build_report(sample_study(), run_dir=Path("/elsewhere")).trials
    assert elsewhere[0].engine_log == "/runs/smollm2-cpu/run-1/trial-001-c000000001/trial-001.engine.log"


@pytest.mark.parametrize(
    ("command", "launcher"),
    [
        ("docker run --rm --network host img", "docker"),
        ("kubectl apply -f <the trial's *.inferenceservice.yaml kept beside its engine log>", "kubernetes"),
        ("(endpoint http://x:8000: not launched by the tool)", "endpoint"),
        ("VAR=1 /usr/bin/python -m autotuner.engines.sim_server", "process"),
    ],
)
def test_the_launch_command_is_the_recorded_one_with_its_launcher(command: str, launcher: str) -> None:
    assert launcher_of(command) == launcher
    result = sample_study()
    result.best_command = command
    data = build_report(result, manifest="apiVersion: ome.io/v1beta1\n")
    assert data.command is not None and data.command.command == command and data.command.launcher == launcher
    assert (data.command.manifest is not None) == (launcher == "kubernetes")


def test_objective_info_reads_direction_metric_and_unit() -> None:
    assert objective_info("maximize output_throughput").unit == "tokens/s"
    info = objective_info("minimize e2e_latency.p90")
    assert (info.direction, info.metric, info.unit, info.maximize) == ("minimize", "e2e_latency.p90", "s", False)


def ranked_study() -> StudyResult:
    """Trial 1's config measured twice (trial 6 a repeat); trial 2's config tied with it; trial 2 is flaky-free."""
    result = sample_study()
    repeat = trial(6, {"n-parallel": 4, "threads": 2}, [level(1, 97.0, 0.17), level(4, 120.1, 0.95, 0.036, 3.3)])
    result.trials.append(repeat.model_copy(update={"config_hash": "c000000001", "repeat": 1}))
    return with_ranking(result, tie_set=["c000000001", "c000000002"])


def test_a_ranking_gives_means_intervals_and_the_tie_set() -> None:
    data = build_report(ranked_study())
    h = data.headline
    assert h.best_number == 1 and h.best_measurements == 2
    mean = (126.3 + 120.1) / 2
    assert h.best_value == pytest.approx(mean)
    assert h.best_interval is not None and h.best_interval == pytest.approx((mean * 0.95, mean * 1.05))
    assert h.gain == pytest.approx(mean / 68.5 - 1)  # means, not single measurements
    assert h.tie_note.startswith("tied at 95% confidence with 1 other config(s): n-parallel=2,threads=1; chosen by")
    assert data.tie_set == ("c000000001", "c000000002")
    rows = {r.number: r for r in data.trials}
    assert sorted(n for n, r in rows.items() if r.in_tie_set) == [1, 2, 6]
    assert rows[2].loss.kind == "tied"
    assert rows[2].loss.summary == "tied with the best at 95% confidence, p=0.42; the tie-break chose the best"
    assert rows[6].loss.kind == "repeat" and rows[6].loss.summary == "another measurement of the best config (repeat 1)"
    assert rows[0].loss.kind == "lower-objective" and rows[0].interval is not None
    assert rows[3].mean is None and rows[3].interval is None


def test_the_best_is_first_even_below_a_higher_single_measurement() -> None:
    result = with_ranking(sample_study(), tie_set=["c000000002", "c000000001"])  # the tie-break chose trial 2
    rows = build_report(result).trials
    assert [r.number for r in rows][:3] == [2, 1, 0]
    assert rows[1].loss.kind == "tied"


def test_a_config_that_missed_the_slos_on_a_repeat_is_flaky() -> None:
    result = sample_study()
    miss = trial(6, {"n-parallel": 2, "threads": 1}, [level(1, 40.0, 2.9, over=0.3)])
    result.trials.append(miss.model_copy(update={"config_hash": "c000000002", "repeat": 1}))
    result = with_ranking(result, tie_set=["c000000001"], separated=True)
    data = build_report(result)
    row = next(r for r in data.trials if r.number == 2)
    assert row.loss.kind == "flaky" and row.mean is None
    assert row.loss.summary == "not recommended: it missed the SLOs in at least half of its measurements"
    assert data.headline.tie_note == "better than every other config at 95% confidence"


def test_the_headline_says_when_the_best_config_missed_the_slos_on_a_measurement() -> None:
    """The best config counts by the majority of its measurements; the miss left out of its mean is said."""
    result = ranked_study()
    miss = trial(7, {"n-parallel": 4, "threads": 2}, [level(1, 20.0, 2.9, over=0.3)])
    result.trials.append(miss.model_copy(update={"config_hash": "c000000001", "repeat": 2}))
    assert result.missed("c000000001") == 1 and result.missed("c000000002") == 0
    data = build_report(result)
    assert data.headline.best_measurements == 2 and data.headline.best_missed == 1
    assert "mean of 2 measurements (1 more missed the SLOs)" in render_markdown(data, {})
    assert "over 2 measurement(s) (1 more missed the SLOs)" in summarize(result)
    assert build_report(ranked_study()).headline.best_missed == 0


def test_a_config_that_met_the_slos_in_most_measurements_is_not_flaky() -> None:
    """2 of 3 met: the config counts (estimates.counts), so its row loses on its merits, not as flaky."""
    result = sample_study()
    miss = trial(6, {"n-parallel": 2, "threads": 1}, [level(1, 40.0, 2.9, over=0.3)])
    again = trial(7, {"n-parallel": 2, "threads": 1}, [level(1, 95.0, 0.2)])
    result.trials.append(miss.model_copy(update={"config_hash": "c000000002", "repeat": 1}))
    result.trials.append(again.model_copy(update={"config_hash": "c000000002", "repeat": 2}))
    result = with_ranking(result, tie_set=["c000000001"], separated=True)
    row = next(r for r in build_report(result).trials if r.number == 2)
    assert row.loss.kind != "flaky"


def test_without_a_ranking_there_are_no_intervals() -> None:
    data = build_report(sample_study())
    assert data.ties is None and data.tie_set == () and data.headline.tie_note == ""
    assert data.headline.best_interval is None and data.headline.best_measurements == 1


def test_large_studies_keep_every_trial_in_order() -> None:
    data = build_report(large_study(600))
    assert len(data.trials) == 600
    values = [r.objective or 0.0 for r in data.trials if r.outcome == "feasible"]
    assert values == sorted(values, reverse=True) and data.trials[0].best
    order = {"feasible": 0, "infeasible": 1, "failed": 2}
    outcomes = [order[r.outcome] for r in data.trials]
    assert outcomes == sorted(outcomes)


def test_a_feasible_level_never_appears_as_a_reason() -> None:
    t = trial(1, {"a": 1}, [level(1, 50.0, 0.2), level(4, 80.0, 0.5)])
    data = build_report(study([t], best=1, baseline=None))
    assert data.trials[0].loss.misses == ()
    assert not math.isnan(data.headline.best_value or math.nan)


def test_an_unknown_objective_metric_is_shown_without_a_unit() -> None:
    assert objective_info("maximize joules_per_token").unit == ""


def test_a_large_tie_set_is_counted_in_the_confidence_line() -> None:
    """A noisy study can tie twenty configs with its best: the headline names three and counts the rest (the
    trial table marks every one of them)."""
    result = sample_study()
    for number, slots in enumerate((3, 5, 6, 7), start=7):
        levels = [level(1, 80.0 + number, 0.3), level(4, 100.0 + number, 1.0, 0.04, 3.5)]
        result.trials.append(trial(number, {"n-parallel": slots, "threads": 1}, levels))
    tied = [t.config_hash for t in result.trials if t.outcome == "feasible" and t.config_hash != "c000000001"]
    data = build_report(with_ranking(result, tie_set=["c000000001", *tied]))
    note = data.headline.tie_note
    assert note.startswith(f"tied at 95% confidence with {len(tied)} other config(s): "), note
    assert f" and {len(tied) - 3} more; chosen by the tie-break" in note, note
    assert sum(1 for r in data.trials if r.in_tie_set) == len(tied) + 1
