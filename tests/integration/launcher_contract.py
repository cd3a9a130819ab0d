"""The contract every launcher passes (like Optuna's storage test suites): subclass it per launcher.

A subclass provides the ``launcher`` fixture and ``request(tmp_path, **overrides)``, and ``left_running(dep)``
which says what of a deployment is still alive on the machine (processes, containers). The engine under test is
the ``sim`` double wherever the launcher can run it, so the contract runs in seconds.

Every test runs for every launcher; none is skipped. Where a test's premise cannot hold for a launcher (the
endpoint launcher starts no engine, so it has no flags to get wrong and sees no exit code), the subclass overrides
it under the same name with what the contract means there, and says why in its docstring.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from autotuner.engines.profile import FailureKind
from autotuner.launch import Deployment, Launcher, LaunchFailed, LaunchRequest, wait_until_ready

from .engine_http import chat


class LauncherContract:
    def request(self, tmp_path: Path, **overrides: Any) -> LaunchRequest:
        raise NotImplementedError

    def left_running(self, deployment: Deployment) -> list[str]:
        raise NotImplementedError

    def test_start_ready_serve_stop(self, launcher: Launcher, tmp_path: Path) -> None:
        request = self.request(tmp_path)
        deployment = launcher.start(request)
        with deployment:
            took = wait_until_ready(deployment, request.profile, timeout=60)
            assert took < 60
            reply = chat(deployment.url, request.served_name, max_tokens=8)
            assert reply["usage"]["completion_tokens"] == 8 and reply["text"]
            assert deployment.exit_code() is None
        assert self.left_running(deployment) == []
        assert deployment.log_path.is_file() and deployment.log_path.stat().st_size > 0

    def test_stop_is_idempotent(self, launcher: Launcher, tmp_path: Path) -> None:
        request = self.request(tmp_path)
        deployment = launcher.start(request)
        wait_until_ready(deployment, request.profile, timeout=60)
        deployment.stop()
        deployment.stop()
        assert self.left_running(deployment) == []

    def test_stop_while_starting(self, launcher: Launcher, tmp_path: Path) -> None:
        deployment = launcher.start(self.request(tmp_path, flags={"startup-delay": 30}))
        deployment.stop(grace=5)
        assert self.left_running(deployment) == []

    def test_bad_flag_is_an_invalid_argument(self, launcher: Launcher, tmp_path: Path) -> None:
        request = self.request(tmp_path, flags={"no-such-flag": 3})
        with launcher.start(request) as deployment, pytest.raises(LaunchFailed) as caught:
            wait_until_ready(deployment, request.profile, timeout=60)
        assert caught.value.kind is FailureKind.INVALID_ARGUMENT
        assert "--no-such-flag" in caught.value.log_tail
        assert self.left_running(deployment) == []

    def test_oom_at_start_is_classified(self, launcher: Launcher, tmp_path: Path) -> None:
        request = self.request(tmp_path, flags={"kv-cache-tokens": 1024, "max-num-seqs": 64})
        with launcher.start(request) as deployment, pytest.raises(LaunchFailed) as caught:
            wait_until_ready(deployment, request.profile, timeout=60)
        assert caught.value.kind is FailureKind.OOM and caught.value.exit_code == 1
        assert "out of memory" in caught.value.log_tail

    def test_hang_is_a_timeout(self, launcher: Launcher, tmp_path: Path) -> None:
        request = self.request(tmp_path, flags={"hang": True})
        started = time.monotonic()
        with launcher.start(request) as deployment, pytest.raises(LaunchFailed) as caught:
            wait_until_ready(deployment, request.profile, timeout=3)
        assert caught.value.kind is FailureKind.TIMEOUT
        assert time.monotonic() - started < 30
        assert self.left_running(deployment) == []

    def test_crash_mid_run_is_seen(self, launcher: Launcher, tmp_path: Path) -> None:
        request = self.request(tmp_path, flags={"crash-after": 1})
        with launcher.start(request) as deployment:
            wait_until_ready(deployment, request.profile, timeout=60)
            chat(deployment.url, request.served_name, max_tokens=2)
            deadline = time.monotonic() + 20
            while deployment.exit_code() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert deployment.exit_code() == 1


REAP_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tests.integration.{module} import {cls}
    contract = {cls}()
    launcher = contract.make_launcher()
    deployment = launcher.start(contract.request(Path(sys.argv[1])))
    print(deployment.description, flush=True)
    time.sleep(600)
""")


def run_owner_and_kill_it(module: str, cls: str, tmp_path: Path) -> str:
    """Start an engine from a separate tuner process, then SIGKILL that process: it cannot clean up."""
    code = REAP_CHILD.format(module=module, cls=cls)
    root = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        start_new_session=True,
    )
    try:
        assert owner.stdout is not None
        description = owner.stdout.readline().strip()
        assert description, "the owner process did not start an engine"
    finally:
        os.killpg(owner.pid, signal.SIGKILL)
        owner.wait()
    return description
