"""`autotuner tune` end to end with real genai-bench and the `sim` engine (standing in for a GPU engine).

The sim's latencies follow a documented queueing model, so which config is best is known in advance: more
concurrent sequences give more throughput at concurrency 4 until the batch is as large as the load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from autotuner.results import StudyResult

pytestmark = pytest.mark.slow

SPEC = """\
name: sim-tune
model: {id: builtin:smollm2}
engine: {runtime: sim, args: {time-scale: 0.2, decode-step-ms: 20}, startup_timeout: 30s}
parameters:
  max-num-seqs: MAX_NUM_SEQS
workload: {scenarios: ["D(64,32)"], concurrency: [1, 4], max_requests: 8, max_time: 1m, warmup_requests: 1}
slo:
  ttft: {p90: 2s}
  e2e_latency: {p99: 10s}
objective: {maximize: output_throughput}
search: {strategy: STRATEGY, seed: 3, baseline: {max-num-seqs: 1}MAX_TRIALS, racing: RACING}
"""


def write_spec(
    tmp_path: Path,
    values: str = "[1, 2, 4, 8]",
    strategy: str = "grid",
    max_trials: int | None = None,
    extra: str = "",
    racing: str = "false",  # the search alone, except in the racing test
) -> Path:
    text = SPEC.replace("MAX_NUM_SEQS", values).replace("STRATEGY", strategy).replace("RACING", racing)
    text = text.replace("MAX_TRIALS", f", max_trials: {max_trials}" if max_trials else "") + extra
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return spec


def tune(tmp_path: Path, spec: Path, *args: str) -> tuple[int, str, StudyResult | None]:
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "autotuner", "tune", str(spec), "--report-dir", str(tmp_path / "reports"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    path = tmp_path / "reports" / "sim-tune" / "latest" / "results.json"
    return result.returncode, result.stdout + result.stderr, StudyResult.read(path) if path.exists() else None


def no_engine_left() -> bool:
    me = psutil.Process(os.getpid())
    return not [p for p in me.children(recursive=True) if "autotuner.engines" in " ".join(p.cmdline())]


def test_grid_finds_the_best_config_and_reports_against_the_baseline(tmp_path: Path) -> None:
    code, output, result = tune(tmp_path, write_spec(tmp_path))
    assert code == 0, output
    assert result is not None
    assert [t.config["max-num-seqs"] for t in result.trials] == [1, 2, 4, 8]  # baseline first, never twice
    assert result.baseline_trial == 0 and result.trials[0].baseline
    assert all(t.outcome == "feasible" for t in result.trials)
    best = result.best()
    assert best is not None and best.config["max-num-seqs"] in (4, 8)
    baseline = result.baseline()
    assert baseline is not None and best.objective is not None and baseline.objective is not None
    assert best.objective > 2 * baseline.objective  # 4 sequences in a batch vs 1, at concurrency 4
    assert "best: max-num-seqs=" in output and "best is +" in output
    assert result.best_command is not None and "autotuner.engines.sim_server" in result.best_command
    assert f"--max-num-seqs {best.config['max-num-seqs']}" in result.best_command
    assert result.environment is not None and result.environment.cpus >= 1 and result.environment.engine == "sim"
    for trial in result.trials:
        names = [s.name for s in trial.stages]
        assert names == [
            "launch",
            "ready",
            "bench",
            "warmup",
            "level D(64,32)@1",
            "level D(64,32)@4",
            "judge",
            "teardown",
        ], names  # "bench" spans the warm-up and the levels
        bench = trial.stages[2]
        assert all(bench.started <= s.started <= s.ended <= bench.ended + 0.01 for s in trial.stages[3:6])
        assert Path(trial.engine_log or "").is_file()
        assert [(lv.scenario, lv.concurrency) for lv in trial.levels] == [("D(64,32)", 1), ("D(64,32)", 4)]
        assert all(lv.samples.e2e_latency for lv in trial.levels)
    assert no_engine_left()


def test_failures_are_data(tmp_path: Path) -> None:
    """A config that runs out of memory at start and one that misses a hard SLO are recorded, with reasons."""
    extra = ""
    spec = write_spec(tmp_path, values="[1, 64]", extra=extra)
    text = spec.read_text().replace(
        "args: {time-scale: 0.2, decode-step-ms: 20}",
        "args: {time-scale: 0.2, decode-step-ms: 20, kv-cache-tokens: 65536}",
    )
    spec.write_text(text)
    code, output, result = tune(tmp_path, spec)
    assert code == 0, output
    assert result is not None
    oom = next(t for t in result.trials if t.config["max-num-seqs"] == 64)
    assert oom.outcome == "failed" and oom.failure_kind == "oom" and "exited with code 1" in oom.reason
    assert "out of memory" in Path(oom.engine_log or "").read_text()
    assert result.best() is not None and result.best().config["max-num-seqs"] == 1  # type: ignore[union-attr]


def test_a_hard_slo_miss_stops_the_config_early(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, values="[1, 4]")
    spec.write_text(spec.read_text().replace("ttft: {p90: 2s}", "ttft: {p90: 60ms}"))
    code, output, result = tune(tmp_path, spec)
    assert result is not None
    slow = result.trials[0]  # max-num-seqs=1 at concurrency 4 queues: its TTFT breaks 60 ms
    assert slow.outcome in ("feasible", "infeasible")
    if slow.outcome == "infeasible":
        assert any("not run" in (lv.failure or "") for lv in slow.levels) or len(slow.levels) == 2
    assert "hard SLO missed" in output


def test_budget_smaller_than_the_grid_is_sampled_without_bias(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, values="[1, 2, 3, 4, 5, 6, 7, 8]", max_trials=3)
    code, output, result = tune(tmp_path, spec)
    assert code == 0, output
    assert result is not None
    assert len(result.trials) == 3  # max_trials counts every measured config, the baseline included
    assert result.trials[0].config == {"max-num-seqs": 1}
    assert any("seeded random sample" in note for note in result.notes)
    assert [t.config["max-num-seqs"] for t in result.trials[1:]] != [2, 3]  # not "the first N"


def test_random_search_never_measures_a_config_twice(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, values="[2, 4]", strategy="random", max_trials=6)
    code, output, result = tune(tmp_path, spec)
    assert code == 0, output
    assert result is not None
    hashes = [t.config_hash for t in result.trials]
    assert len(hashes) == len(set(hashes)) == 3  # baseline (1) + the two values; then the space is exhausted
    assert any("search is complete" in note for note in result.notes)


def test_resume_from_storage_keeps_what_was_measured(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, values="[1, 2, 4, 8]")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    code, output, first = tune(tmp_path, spec, "--storage", storage, "--max-trials", "2")
    assert code == 0, output
    assert first is not None and len(first.trials) == 2
    code, output, second = tune(tmp_path, spec, "--storage", storage, "--resume")
    assert code == 0, output
    assert second is not None
    assert [t.config["max-num-seqs"] for t in second.trials] == [1, 2, 4, 8]
    assert [t.model_dump() for t in second.trials[:2]] == [t.model_dump() for t in first.trials]
    assert any("resumed: 2 configs" in note for note in second.notes)
    data = json.loads((tmp_path / "reports" / "sim-tune" / "latest" / "results.json").read_text())
    assert data["best_trial"] is not None


def test_configs_differing_only_in_client_settings_share_one_engine(tmp_path: Path) -> None:
    """request.* parameters reach genai-bench's requests; the engine is launched once per engine config."""
    spec = write_spec(tmp_path, values="[2, 4]")
    spec.write_text(
        spec.read_text()
        .replace("  max-num-seqs: [2, 4]", "  max-num-seqs: [2, 4]\n  request.temperature: [0.0, 0.5]")
        .replace("baseline: {max-num-seqs: 1}", "baseline: {max-num-seqs: 2, request.temperature: 0.0}")
    )
    code, output, result = tune(tmp_path, spec)
    assert code == 0, output
    assert result is not None and len(result.trials) == 4
    launches = [next(s for s in t.stages if s.name == "launch") for t in result.trials]
    reused = [s for s in launches if s.detail.startswith("reused the engine")]
    assert len(reused) == 2, [s.detail for s in launches]  # 2 engine configs x 2 temperatures: 2 launches
    engines = {t.engine_log for t in result.trials}
    assert len(engines) == 2
    for trial in result.trials:  # each trial's temperature went out with its requests
        metadata = list(
            (tmp_path / "reports" / "sim-tune" / "latest").glob(
                f"trial-*-{trial.config_hash}/bench/*/experiment_metadata.json"
            )
        )
        assert metadata, trial.config_id
        assert (
            json.loads(metadata[0].read_text())["additional_request_params"]["temperature"]
            == trial.config["request.temperature"]
        )
    assert no_engine_left()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_interrupting_tune_mid_benchmark_keeps_results_and_leaves_nothing(tmp_path: Path, sig: str) -> None:
    """A CI runner cancelling the job (SIGTERM) or Ctrl-C while genai-bench measures: engine and worker stop."""
    import signal
    import time

    spec = write_spec(tmp_path, values="[1, 2]")
    spec.write_text(spec.read_text().replace("decode-step-ms: 20", "decode-step-ms: 200"))  # slow levels
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(tmp_path / "state")}
    tool = subprocess.Popen(
        [sys.executable, "-m", "autotuner", "tune", str(spec), "--report-dir", str(tmp_path / "reports")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert tool.stdout is not None
        seen = ""
        deadline = time.monotonic() + 120
        while "level 1 of 2: D(64,32) at concurrency 1" not in seen and time.monotonic() < deadline:
            seen += tool.stdout.readline()
        assert "level 1 of 2" in seen, seen
        time.sleep(1.0)  # genai-bench is sending requests now
        children = psutil.Process(tool.pid).children(recursive=True)
        assert any("sim_server" in " ".join(p.cmdline()) for p in children)
        tool.send_signal(getattr(signal, sig))
        output, _ = tool.communicate(timeout=60)
        assert tool.returncode == 130, seen + output
        assert "interrupted: what was measured is in" in output and "--storage" in output
        psutil.wait_procs(children, timeout=20)
        assert [p.pid for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        assert not list((tmp_path / "state").glob("process-*.json"))  # no engine record left: it was stopped
    finally:
        if tool.poll() is None:
            os.killpg(tool.pid, signal.SIGKILL)
            tool.wait()


def test_the_incumbent_probe_drops_hopeless_configs_after_a_few_requests(tmp_path: Path) -> None:
    """Baseline 8 sequences per batch is the incumbent; 1 sequence reaches a quarter of its throughput at
    concurrency 4 (dropped after the probe), 4 sequences match it (probed, then measured in full). Two rounds of
    probe requests and a 40% margin keep a busy runner's noise from dropping the equal config."""
    spec = write_spec(tmp_path, values="[8, 1, 4]", extra="")
    text = spec.read_text().replace(
        "baseline: {max-num-seqs: 1}", "baseline: {max-num-seqs: 8}, probe: {requests: 8, margin: 40%}"
    )
    spec.write_text(text.replace("max_requests: 8", "max_requests: 12"))
    code, output, result = tune(tmp_path, spec)
    assert code == 0, output
    assert result is not None
    by_seqs = {t.config["max-num-seqs"]: t for t in result.trials}
    assert by_seqs[8].baseline and by_seqs[8].outcome == "feasible"
    assert "probe" not in [s.name for s in by_seqs[8].stages]  # the baseline is measured in full
    dropped = by_seqs[1]
    assert dropped.outcome == "skipped", dropped
    assert dropped.reason.startswith("probe at D(64,32)@4:") and "below the best so far (trial 0" in dropped.reason
    names = [s.name for s in dropped.stages]
    assert "probe" in names and "level D(64,32)@1" not in names and "judge" not in names
    assert [(lv.concurrency, lv.requests) for lv in dropped.levels] == [(4, 8)]
    assert dropped.objective is not None and dropped.objective < 0.6 * (by_seqs[8].objective or 0)
    kept = by_seqs[4]
    assert kept.outcome == "feasible"
    assert [s.name for s in kept.stages][:4] == ["launch", "ready", "probe", "probe warmup"]
    assert [lv.concurrency for lv in kept.levels] == [1, 4]
    assert result.best() is not None and result.best().config["max-num-seqs"] in (4, 8)  # type: ignore[union-attr]
    assert "dropped early by the incumbent probe" in output
    assert no_engine_left()


def test_racing_re_measures_the_leaders_and_names_a_tie_set_with_intervals(tmp_path: Path) -> None:
    """4 and 8 sequences per batch serve concurrency 4 equally: racing measures them again (interleaved), the
    clearly slower 1 only once more as the baseline the gain is reported against, and reports 4 and 8 as tied;
    levels carry per-request intervals."""
    spec = write_spec(tmp_path, values="[1, 4, 8]", racing="{share: 100%, max_repeats: 3}")
    code, output, result = tune(tmp_path, spec)
    assert code == 0, output
    assert result is not None and result.ranking is not None
    first = [t for t in result.trials if t.repeat == 0]
    repeats = [t for t in result.trials if t.repeat > 0]
    assert sorted(t.config["max-num-seqs"] for t in first) == [1, 4, 8]
    assert repeats and {t.config["max-num-seqs"] for t in repeats if not t.baseline} <= {4, 8}  # leaders only
    assert [t.repeat for t in repeats if t.baseline] == [1]  # the clearly worse baseline: confirmed once
    assert "repeat 1 of max-num-seqs=" in output
    ranking = result.ranking
    best = result.best()
    assert best is not None and best.repeat == 0 and ranking.best == best.config_hash
    estimate = ranking.estimate(best.config_hash)
    assert estimate is not None and len(estimate.values) >= 2
    assert estimate.interval.low is not None and estimate.interval.low < estimate.mean < (estimate.interval.high or 0)
    assert ("within noise of it" in output) or ("separated from every other config" in output)
    level = best.levels[-1]
    throughput = level.intervals["output_throughput"]
    assert throughput.low is not None and throughput.high is not None and throughput.low < throughput.high
    assert "ttft.p90" in level.intervals and "e2e_latency.p99" in level.intervals
    assert no_engine_left()
