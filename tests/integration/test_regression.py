"""Regression detection end to end with the sim engine: `autotuner tune --baseline` and `autotuner compare`.

The sim's latencies follow its queueing model, so whether a change is a regression is known in advance: a
longer decode step is a slower engine. main's baseline is made the way a workflow on main makes it (tune, then
`autotuner baseline update`); a "pull request" is a spec edit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autotuner.results import StudyResult

pytestmark = pytest.mark.slow

SPEC = """\
name: sim-regression
model: {id: builtin:smollm2}
engine: {runtime: sim, args: {time-scale: 0.2, decode-step-ms-per-seq: 0, max-num-seqs: 4}, startup_timeout: 30s}
parameters:
  decode-step-ms: [STEP]
  seed: [SEED]
workload: {scenarios: ["D(64,32)"], concurrency: [4], max_requests: 8, max_time: 1m, warmup_requests: 1}
slo:
  ttft: {p90: 2s}
  e2e_latency: {p99: 10s}
objective: {maximize: output_throughput}
search: {strategy: grid, racing: false}
regression: {threshold: 20%, confidence: 95%}
"""


def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "autotuner", *args], capture_output=True, text=True, env=env, timeout=600
    )
    return done.returncode, done.stdout + done.stderr


def spec(tmp_path: Path, name: str, step: int, seed: int = 0) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.replace("STEP", str(step)).replace("SEED", str(seed)))
    return path


def results(tmp_path: Path) -> StudyResult:
    return StudyResult.read(tmp_path / "reports" / "sim-regression" / "latest" / "results.json")


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    """main's baseline: a tuning run of the main spec, then `autotuner baseline update`."""
    main = spec(tmp_path, "main", 20)
    code, output = cli(tmp_path, "tune", str(main), "--report-dir", str(tmp_path / "reports"))
    assert code == 0, output
    run = tmp_path / "reports" / "sim-regression" / "latest" / "results.json"
    code, output = cli(tmp_path, "baseline", "update", str(main), str(run), "--reports-dir", str(tmp_path / "main"))
    assert code == 0, output
    path = tmp_path / "main" / "sim-regression" / "baseline.json"
    assert output.strip() == str(path)
    return path


def test_a_slower_engine_config_is_a_regression_by_ab_and_compare_agrees(tmp_path: Path, baseline: Path) -> None:
    slower = spec(tmp_path, "pr", 40)  # every decode step twice as long: half the throughput
    code, output = cli(
        tmp_path, "tune", str(slower), "--report-dir", str(tmp_path / "reports"),
        "--baseline", str(tmp_path / "main"), "--ab-rounds", "3",
    )  # fmt: skip
    assert code == 6, output
    assert "verdict: REGRESSED" in output and "same-runner A/B (3 interleaved rounds)" in output
    run = results(tmp_path)
    comparison = run.comparison
    assert comparison is not None and comparison.mode == "ab" and comparison.verdict == "regressed"
    assert comparison.config_changed and comparison.spec_changed
    by_number = {t.number: t for t in run.trials}
    arm_a = [by_number[n] for n in comparison.baseline_trials]
    arm_b = [by_number[n] for n in comparison.current_trials]
    assert {t.config["decode-step-ms"] for t in arm_a} == {20} and {t.config["decode-step-ms"] for t in arm_b} == {40}
    order = sorted(arm_a + arm_b, key=lambda t: t.number)
    assert [t.config["decode-step-ms"] for t in order] == [20, 40, 40, 20, 20, 40]  # A B, B A, A B
    objective = comparison.objectives[0]
    assert objective.change is not None and objective.change.estimate is not None
    assert -0.6 < objective.change.estimate < -0.35
    report = (run_dir(tmp_path) / "report.md").read_text()
    assert "Against the baseline: regressed" in report
    code, output = cli(tmp_path, "compare", str(baseline), str(run_dir(tmp_path) / "results.json"))
    assert code == 6 and "verdict: REGRESSED" in output and "same-runner A/B (3 interleaved rounds)" in output


def test_an_equally_fast_new_config_is_unchanged(tmp_path: Path, baseline: Path) -> None:
    other = spec(tmp_path, "pr", 20, seed=1)  # another config (its seed), the same speed
    code, output = cli(
        tmp_path, "tune", str(other), "--report-dir", str(tmp_path / "reports"), "--baseline", str(baseline),
        "--ab-rounds", "3",
    )  # fmt: skip
    assert code == 0, output
    comparison = results(tmp_path).comparison
    assert comparison is not None and comparison.mode == "ab" and comparison.verdict in ("unchanged", "improved")
    assert comparison.config_changed


def test_the_same_config_is_compared_with_the_stored_numbers(tmp_path: Path, baseline: Path) -> None:
    code, output = cli(
        tmp_path, "tune", str(spec(tmp_path, "main", 20)), "--report-dir", str(tmp_path / "reports"),
        "--baseline", str(baseline), "--ab-rounds", "2",
    )  # fmt: skip
    comparison = results(tmp_path).comparison
    assert comparison is not None and comparison.mode == "stored", output
    assert not comparison.config_changed and not comparison.spec_changed
    assert "against the baseline's stored numbers" in output and "nothing to A/B against" in output
    assert len(comparison.current_trials) == 2  # topped up to the rounds asked for
    assert code == {"unchanged": 0, "improved": 0, "inconclusive": 7, "regressed": 6}[comparison.verdict]


def test_a_baseline_from_another_engine_is_refused_or_loudly_compared(tmp_path: Path, baseline: Path) -> None:
    data = json.loads(baseline.read_text())
    data["environment"]["engine"] = "sim (another build)"
    baseline.write_text(json.dumps(data))
    args = ["tune", str(spec(tmp_path, "pr", 20, seed=1)), "--report-dir", str(tmp_path / "reports")]
    code, output = cli(tmp_path, *args, "--baseline", str(baseline))
    assert code == 2, output
    assert "engine: sim (another build) on main, sim now" in output and "trial" not in output  # nothing measured
    code, output = cli(tmp_path, *args, "--baseline", str(baseline), "--allow-mismatch")
    assert "WARNING: comparing across environments" in output
    comparison = results(tmp_path).comparison
    assert comparison is not None and comparison.mode == "stored" and comparison.warnings
    assert "WARNING" in (run_dir(tmp_path) / "report.md").read_text()
    code, output = cli(tmp_path, "compare", str(baseline), str(run_dir(tmp_path) / "results.json"))
    assert code == 2 and "refused" in output


def run_dir(tmp_path: Path) -> Path:
    return (tmp_path / "reports" / "sim-regression" / "latest").resolve()


def test_the_pytest_verdict_fails_on_the_same_regression(tmp_path: Path, baseline: Path) -> None:
    """`pytest --tune --tune-baseline`: the verdict item runs the same A/B and fails with compare's table."""
    slower = spec(tmp_path, "pr", 40)
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--tune", str(slower), "-p", "no:cacheprovider", "-p", "no:randomly",
            "--tune-report-dir", str(tmp_path / "reports"), "--tune-baseline", str(tmp_path / "main"),
        ],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "FAILED" in output and "sim-regression[verdict]" in output and "verdict: REGRESSED" in output
    comparison = results(tmp_path).comparison
    assert comparison is not None and comparison.verdict == "regressed" and comparison.mode == "ab"
