"""Regression detection on the real CPU engine: main's baseline, then a pull request that slows llama.cpp down.

llama.cpp (xllamacpp) serving SmolLM2, genai-bench, the whole pipeline: main tunes its spec and writes its
baseline; the "pull request" edits the spec so that its only config runs llama.cpp on one thread instead of two.
(On a loaded 2-core machine two llama.cpp threads next to genai-bench oversubscribe the CPU and their speed swings
run to run; on CI's otherwise idle runner two threads are reliably faster. Batching alone, n-parallel 4 against 1
on one thread, makes no measurable difference on this CPU.)
`autotuner tune --baseline` must measure both configs interleaved on this machine and call it a regression.
A short workload (one level, 8 requests) and 2 A/B rounds keep it to about two minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autotuner.results import StudyResult

ROOT = Path(__file__).resolve().parents[2]


def cpu_spec(tmp_path: Path, name: str, threads: int) -> Path:
    text = (ROOT / "tuning_specs" / "smollm2-cpu.yaml").read_text()
    head, _, rest = text.partition("parameters:")
    tail = rest.split("constraints:", 1)[1].split("\n", 1)[1]
    text = f"{head}parameters:\n  n-parallel: [4]\n  n-batch: [2048]\n  threads: [{threads}]\n{tail}"
    text = text.replace("concurrency: [1, 4]", "concurrency: [4]").replace("max_requests: 12", "max_requests: 8")
    text = text.replace("warmup_requests: 2", "warmup_requests: 1")
    # SLOs loose enough for a slow or busy CI runner: this tests the regression verdict, not the SLOs.
    text = text.replace("ttft: {p90: 2s}", "ttft: {p90: 30s}").replace(
        "e2e_latency: {p99: 10s}", "e2e_latency: {p99: 60s}"
    )
    text = text.replace(
        "search: {strategy: auto, max_trials: 6, timeout: 20m, seed: 0, baseline: {n-parallel: 1, threads: 2}}",
        "search: {strategy: grid, racing: false}",
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "autotuner", *args], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_one_thread_instead_of_two_is_a_regression_on_the_real_engine(tmp_path: Path) -> None:
    reports = str(tmp_path / "reports")
    main = cpu_spec(tmp_path, "main", threads=2)
    code, output = cli(tmp_path, "tune", str(main), "--report-dir", reports)
    assert code == 0, output
    run = tmp_path / "reports" / "smollm2-cpu" / "latest" / "results.json"
    code, output = cli(tmp_path, "baseline", "update", str(main), str(run), "--reports-dir", str(tmp_path / "main"))
    assert code == 0, output
    pull_request = cpu_spec(tmp_path, "pr", threads=1)
    code, output = cli(
        tmp_path, "tune", str(pull_request), "--report-dir", reports, "--baseline", str(tmp_path / "main"),
        "--ab-rounds", "2",
    )  # fmt: skip
    assert code == 6, output
    result = StudyResult.read(run)
    comparison = result.comparison
    assert comparison is not None and comparison.mode == "ab" and comparison.verdict == "regressed", output
    assert len(comparison.baseline_trials) == len(comparison.current_trials) == 2
    change = comparison.objectives[0].change
    assert change is not None and change.estimate is not None and change.estimate < -0.15, output
    assert all(t.outcome == "feasible" for t in result.trials), [t.reason for t in result.trials]
