"""``autotuner tune`` prints no library warnings: the ones our deliberate use of Optuna raises are silenced (by
category, message and module, in ``autotuner.storage``), and nothing else is.

Optuna warns when heartbeats are used ("experimental"; "supposed to be used with Study.optimize"), when a failed
trial is queued again (``RetryHeartbeatStaleTrialCallback``) and when stale trials are checked: all of which a
study on a SQL storage does on purpose, so a user saw four warnings that read like faults of their study.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest

from autotuner.storage import silence_expected_warnings

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
name: rel-warnings
model: {id: builtin:smollm2}
engine: {runtime: sim, args: {time-scale: 1, decode-step-ms: 20}, startup_timeout: 20s}
parameters: {max-num-seqs: [1, 2, 3]}
workload: {scenarios: ["D(32,16)"], concurrency: [2], max_requests: 8, max_time: 1m, warmup_requests: 0}
slo: {ttft: {p90: 10s}, error_rate: 10%}
objective: {maximize: output_throughput}
search: {strategy: grid, baseline: {max-num-seqs: 1}, racing: false, probe: false}
"""


def shown(message: str, category: type[Warning], module: str) -> bool:
    """Would this warning reach the terminal once the expected ones are silenced?"""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_expected_warnings()
        warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)
    return bool(caught)


def test_only_the_expected_warnings_are_silenced() -> None:
    experimental = optuna.exceptions.ExperimentalWarning
    heartbeat = "Heartbeat of storage is supposed to be used with Study.optimize."
    stale = "optuna.storages._heartbeat.fail_stale_trials is experimental (supported from v2.9.0)."
    assert not shown(heartbeat, UserWarning, "optuna.study.study")  # Python < 3.12 names Optuna's module
    assert not shown(heartbeat, UserWarning, "autotuner.study")  # 3.12+ names the caller
    assert not shown(stale, experimental, "autotuner.study")
    assert not shown("RetryHeartbeatStaleTrialCallback is experimental (supported from v2.8.0).", experimental,
                     "autotuner.storage")  # fmt: skip
    # Narrow: the same text from elsewhere, another Optuna warning, another category: all still shown.
    assert shown(heartbeat, UserWarning, "somebody.else")
    assert shown("Argument ``group`` is an experimental feature.", experimental, "optuna.samplers._tpe.sampler")
    assert shown(heartbeat, DeprecationWarning, "optuna.study.study")
    assert shown("something unexpected", UserWarning, "autotuner.study")


class Run:
    """``python -m autotuner tune`` with stdout and stderr kept apart (files), so stderr can be read on its own."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.out, self.err = folder / f"out-{time.monotonic_ns()}.txt", folder / f"err-{time.monotonic_ns()}.txt"
        env = {
            **os.environ,
            "AUTOTUNER_STATE_DIR": str(folder / "state"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        env.pop("PYTHONWARNINGS", None)
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(  # noqa: S603 - an argument list
                [sys.executable, "-m", "autotuner", "tune", *args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=folder, start_new_session=True,
            )  # fmt: skip

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out.read_text() and time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.05)
        assert text in self.out.read_text(), self.out.read_text() + self.err.read_text()

    def finish(self, timeout: float = 180) -> tuple[int, str, str]:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return code, self.out.read_text(), self.err.read_text()


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Warning" in line or "warn(" in line]


@pytest.mark.slow
def test_tune_on_a_sql_storage_prints_no_warning(tmp_path: Path) -> None:
    """Interrupted mid-trial (the trial is failed and queued again) and resumed (the stale check, the retry
    callback, heartbeats with ask/tell): every warning-raising path of a study, with the sim engine."""
    (tmp_path / "spec.yaml").write_text(SPEC)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ("spec.yaml", "--report-dir", "reports", "--storage", storage)
    first = Run(tmp_path, *args)
    first.wait_for("level 1 of 1", 120)
    time.sleep(0.5)
    first.process.send_signal(signal.SIGINT)
    code, out, err = first.finish()
    assert code == 130, out + err
    assert warning_lines(err) == [], err
    code, out, err = Run(tmp_path, *args, "--resume").finish()
    assert code == 0, out + err
    assert "3 trials" in out
    assert warning_lines(err) == [], err
    assert err.strip() == "", err  # nothing else on stderr either
