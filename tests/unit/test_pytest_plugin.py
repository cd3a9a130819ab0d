"""The pytest plugin's pure parts: outcome mapping and messages, the benchmark mapping, option values, GPU sets,
and ``--lf``'s carry-over of measured trials (no engine is started here; see tests/integration for that)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from autotuner.launch.plan import GPU_DEVICES_VARIABLE, launch_request
from autotuner.pytest_plugin import benchmark, judge, lastfailed, options, workers
from autotuner.results import CheckRecord, LevelRecord, ObjectiveRecord, StudyResult, TrialRecord
from autotuner.space import Config
from autotuner.study import RECORD_ATTR
from autotuner.validation import load_spec_text

from .specs import mutate


def record(number: int, outcome: str, *, value: float | None = None, ttft: float = 0.1, **extra: Any) -> TrialRecord:
    check = CheckRecord(metric="ttft.p90", bound="max", limit=0.25, measured=ttft, hard=True, passed=ttft <= 0.25)
    if ttft > 0.25:
        check.violation_rate = 0.75
    level = LevelRecord(
        scenario="D(64,32)", concurrency=4, feasible=check.passed, checks=[check], stats={"ttft.p90": ttft}
    )
    return TrialRecord(
        number=number,
        config={"max-num-seqs": number + 1},
        config_id=f"max-num-seqs={number + 1}",
        config_hash=f"hash{number}",
        outcome=outcome,  # type: ignore[arg-type]
        objectives=[ObjectiveRecord(name="maximize output_throughput", value=value, level="D(64,32)@4")],
        levels=[level] if outcome != "failed" else [],
        **extra,
    )


def study(*trials: TrialRecord, best: int | None = None) -> StudyResult:
    return StudyResult(
        spec_name="sim",
        spec_file="sim.yaml",
        spec_digest="d",
        study_name="sim-d",
        strategy="grid",
        started="now",
        objectives=["maximize output_throughput"],
        trials=list(trials),
        best_trial=best,
        baseline_trial=0,
    )


# ------------------------------------------------------------------------------------------------ judgement
def test_values_read_in_their_units() -> None:
    assert judge.format_value("ttft.p90", 0.4012) == "401ms"
    assert judge.format_value("e2e_latency.p99", 2.0) == "2s"
    assert judge.format_value("e2e_latency.p99", 12.5) == "12.5s"
    assert judge.format_value("error_rate", 0.015) == "1.5%"
    assert judge.format_value("output_throughput", 421.07) == "421.1 tokens/s"
    assert judge.format_value("ttft.p90", None) == "n/a"


def test_feasible_passes_a_miss_xfails_and_strict_fails() -> None:
    good = record(1, "feasible", value=421.0)
    assert judge.judge_record(good, strict=False).outcome == "passed"
    miss = record(0, "infeasible", ttft=0.401, reason="D(64,32)@4: ttft.p90 401ms <= 250ms: MISSED")
    relaxed = judge.judge_record(miss, strict=False)
    assert relaxed.outcome == "xfailed"
    assert relaxed.message == "max-num-seqs=1: infeasible: D(64,32)@4: ttft.p90 401ms > 250ms (75% of requests over)"
    assert judge.judge_record(miss, strict=True) == judge.Judgement("failed", relaxed.message)
    skipped = record(2, "skipped", reason="search.timeout reached")
    assert judge.judge_record(skipped, strict=True).outcome == "skipped"


def test_a_failed_start_says_why_and_where_the_log_is() -> None:
    oom = record(2, "failed", reason="oom: engine exited with code 1", failure_kind="oom", engine_log="/r/e.log")
    assert judge.explain(oom) == "max-num-seqs=3: failed: oom: engine exited with code 1\n  engine log: /r/e.log"


def test_the_verdict_message_has_every_config_with_numbers() -> None:
    result = study(record(0, "infeasible", ttft=0.4, baseline=True), record(1, "failed", reason="crash: exit 1"))
    message = judge.no_feasible_message(result)
    assert message.splitlines() == [
        "sim: no config met the SLOs; trials 2 run (0 feasible, 1 infeasible, 1 failed), 0 skipped",
        "- baseline max-num-seqs=1: infeasible: D(64,32)@4: ttft.p90 400ms > 250ms (75% of requests over)",
        "- max-num-seqs=2: failed: crash: exit 1",
    ]


def test_properties_carry_each_levels_metrics_and_checks() -> None:
    props = dict(judge.record_properties(record(1, "feasible", value=421.0)))
    assert props["autotuner.outcome"] == "feasible"
    assert props["autotuner.objective.output_throughput"] == 421.0
    assert props["autotuner.level.D(64,32)@4.ttft.p90"] == 0.1
    assert props["autotuner.level.D(64,32)@4.check.ttft.p90"] == "ok: ttft.p90 100ms <= 250ms"


def test_the_summary_names_the_best_and_compares_with_the_baseline() -> None:
    result = study(record(0, "feasible", value=200.0, baseline=True), record(1, "feasible", value=300.0), best=1)
    text = judge.verdict_summary(result)
    assert "best: max-num-seqs=2 [hash1]: maximize output_throughput = 300 tokens/s at D(64,32)@4" in text
    assert "best is +50.0%" in text
    assert "SLOs met at 1/1 levels (at D(64,32)@4: ttft.p90 100ms <= 250ms)" in text


# ------------------------------------------------------------------------------------------------ benchmark
def test_a_throughput_becomes_seconds_per_token_so_ops_is_the_throughput() -> None:
    assert benchmark.seconds_per_round("maximize output_throughput", 400.0) == (0.0025, "s/token")
    assert benchmark.seconds_per_round("maximize requests_per_second", 4.0) == (0.25, "s/request")
    assert benchmark.seconds_per_round("minimize e2e_latency.p90", 1.5) == (1.5, "s")
    made = benchmark.entry(
        name="n", fullname="f::n", group="g", objective="maximize output_throughput", values=[400.0], extra={}
    )
    assert made is not None
    assert made["stats"]["ops"] == pytest.approx(400.0) and made["stats"]["rounds"] == 1
    assert made["extra_info"]["value"] == 400.0 and made["extra_info"]["unit"] == "tokens/s"
    zero = benchmark.entry(
        name="n", fullname="f", group="g", objective="maximize output_throughput", values=[0.0], extra={}
    )
    assert zero is None  # no finite seconds per token: left out rather than written as infinity
    raced = benchmark.entry(
        name="n", fullname="f", group="g", objective="maximize output_throughput", values=[400.0, 200.0], extra={}
    )
    assert raced is not None and raced["stats"]["rounds"] == 2 and raced["extra_info"]["values"] == [400.0, 200.0]
    assert raced["stats"]["ops"] == pytest.approx(2 / (1 / 400 + 1 / 200))


# ------------------------------------------------------------------------------------------------ options
def test_option_values_are_checked() -> None:
    assert options.positive_int("3") == 3
    assert options.duration_seconds("30m") == 1800
    assert options.storage_url("sqlite:///x.db") == "sqlite:///x.db"
    assert options.storage_url("journal:x") == "journal:x"
    for convert, bad in [
        (options.positive_int, "0"),
        (options.non_negative_int, "-1"),
        (options.duration_seconds, "0s"),
        (options.storage_url, "x.db"),
        (options.launcher, "podman"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError):
            convert(bad)


# ------------------------------------------------------------------------------------------------ GPUs
def test_each_worker_gets_its_own_gpus() -> None:
    assert workers.gpu_devices(0, 1) == "0"
    assert workers.gpu_devices(1, 2) == "2,3"
    config: Any = SimpleNamespace(workerinput={"workerid": "gw3"}, option=SimpleNamespace())
    assert workers.worker_index(config) == 3


@pytest.mark.parametrize("launcher", ["process", "docker"])
def test_a_gpu_set_reaches_the_engine(launcher: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GPU_DEVICES_VARIABLE, "2,3")
    text = mutate("  launcher: process\n", f"  launcher: {launcher}\n  image: x/y:1\n" if launcher == "docker" else "")
    loaded = load_spec_text(str(tmp_path / "s.yaml"), text, environ={})
    config = Config.of({"n-parallel": 2, "threads": 1, "n-batch": 512})
    request = launch_request(loaded, config, run_id="r", name="t", log_dir=tmp_path)
    if launcher == "process":
        assert request.env["CUDA_VISIBLE_DEVICES"] == "2,3"
    else:
        assert request.extra["gpu_devices"] == "2,3" and "CUDA_VISIBLE_DEVICES" not in request.env
    monkeypatch.delenv(GPU_DEVICES_VARIABLE)
    plain = launch_request(loaded, config, run_id="r", name="t", log_dir=tmp_path)
    assert "CUDA_VISIBLE_DEVICES" not in plain.env and "gpu_devices" not in plain.extra


# ------------------------------------------------------------------------------------------------ --lf
def test_lf_keeps_the_previous_records_except_those_measured_again(tmp_path: Path) -> None:
    previous, current = tmp_path / "a.journal", tmp_path / "b.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(previous)))
    old = optuna.create_study(study_name="sim-d", storage=storage, direction="maximize")
    for number, outcome in enumerate(["infeasible", "feasible", "feasible"]):
        trial = optuna.trial.create_trial(
            value=float(number),
            params={"x": number},
            distributions={"x": optuna.distributions.IntDistribution(0, 9)},
            user_attrs={RECORD_ATTR: record(number, outcome).model_dump(mode="json")},
        )
        old.add_trial(trial)
    assert lastfailed.carry_over(previous, current, drop={"hash0"}) == 2
    kept = optuna.load_study(
        study_name="sim-d",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(current))),
    ).get_trials()
    records = [TrialRecord.model_validate(t.user_attrs[RECORD_ATTR]) for t in kept]
    assert [r.config_hash for r in records] == ["hash1", "hash2"]
    assert [r.number for r in records] == [0, 1]  # renumbered: numbers stay unique when hash0 is measured again
    assert all(not math.isnan(t.value or 0.0) for t in kept)


# ------------------------------------------------------------------------------------------------ reporting
def test_reports_from_several_processes_make_one_summary_and_benchmark(tmp_path: Path) -> None:
    """What the xdist controller sees: only reports, each carrying its test's data."""
    from autotuner.pytest_plugin.items import record_data, verdict_data
    from autotuner.pytest_plugin.reporting import benchmark_entries, record_report, summary_lines
    from autotuner.pytest_plugin.state import TuneState

    state = TuneState(options.TuneSettings(enabled=True), None, False, tmp_path)
    run: Any = SimpleNamespace(loaded=SimpleNamespace(spec=SimpleNamespace(objective=["maximize output_throughput"])))
    good, miss = record(1, "feasible", value=300.0), record(0, "infeasible", ttft=0.4, baseline=True)
    result = study(miss, good, best=1)

    def report(nodeid: str, when: str, outcome: str, data: dict[str, Any], **extra: Any) -> Any:
        return SimpleNamespace(
            nodeid=nodeid, when=when, failed=outcome == "failed", skipped=outcome == "skipped",
            longrepr=None, longreprtext="", autotuner=data, **extra,
        )  # fmt: skip

    base = {"spec": "sim", "kind": "config"}
    for nodeid, rec in [("s.yaml::sim[baseline]", miss), ("s.yaml::sim[max-num-seqs=2]", good)]:
        data = {**base, **record_data(rec, run)}
        xfail = {"wasxfail": "missed"} if rec is miss else {}
        record_report(state, report(nodeid, "setup", "passed", base))
        record_report(state, report(nodeid, "call", "skipped" if xfail else "passed", data, **xfail))
        record_report(state, report(nodeid, "teardown", "passed", data))
    verdict = {"spec": "sim", "kind": "verdict", **verdict_data(result, "r/results.json")}
    record_report(state, report("s.yaml::sim[verdict]", "teardown", "passed", verdict))

    lines = summary_lines(state)
    assert lines[0] == "sim (grid): trials 2 run (1 feasible, 1 infeasible, 0 failed), 0 skipped"
    assert "  verdict: passed; config tests: 1 passed, 1 xfailed" in lines
    assert "  results: r/results.json" in lines
    entries = benchmark_entries(state)
    assert [e["fullname"] for e in entries] == ["s.yaml::sim[max-num-seqs=2]", "s.yaml::sim[best]"]
    assert entries[1]["extra_info"]["config_id"] == "max-num-seqs=2" and entries[1]["stats"]["ops"] == 300.0
