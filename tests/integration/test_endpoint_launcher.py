"""The endpoint launcher passes the launcher contract, read for a server the tool neither starts nor stops.

The server is the ``sim`` engine, started by the test itself (its own process group, stopped by a finalizer)
with the flags the contract asks for: for an endpoint, the request's flags configure the server someone else
runs, and the ``LaunchRequest`` the launcher gets carries only that server's URL, as the planner makes it for
``launcher: endpoint``. So start, readiness, serving, stopping (twice, or while the server still starts) and a
server that never becomes ready (``--hang``) are checked as the contract writes them, "nothing left" meaning
nothing of the launcher's own: no process of it, and the server untouched.

The failure tests cannot be checked as written, and are replaced (same names) with what they mean here:

- a bad flag: an endpoint has no flags to get wrong. Validation refuses a spec that tunes launch flags for it,
  located; the launcher refuses a request that carries flags (``engine.args``) instead of dropping them;
- an engine that dies at start (of OOM): the tool has no process and no log of it, so it is a server that is
  down: readiness says so quickly, as a timeout naming the URL, and classifies nothing it cannot see;
- an engine that dies mid-run: there is no exit code to see; the next request fails, and readiness after it fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from autotuner.engines.profile import FailureKind, FlagValue
from autotuner.engines.runtimes import SIM
from autotuner.launch import (
    Deployment,
    EndpointLauncher,
    InfrastructureError,
    Launcher,
    LaunchFailed,
    LaunchRequest,
    wait_until_ready,
)
from autotuner.launch.endpoint import EndpointDeployment
from autotuner.launch.process import free_port
from autotuner.spec import SpecError
from autotuner.validation import load_spec_text

from .engine_http import chat
from .launcher_contract import LauncherContract

MODEL = "sim-model"
ENDPOINT_SPEC = """\
name: sim-endpoint
description: Benchmark a sim server that someone else runs
model: {id: sim-model}
engine:
  runtime: sim
  launcher: endpoint
  url: http://127.0.0.1:8000
parameters:
  request.temperature: [0.0, 0.7]
workload:
  task: text-to-text
  scenarios: ["D(64,64)"]
  concurrency: [1]
  max_requests: 4
  max_time: 1m
slo:
  ttft: {p90: 2s}
objective: {maximize: output_throughput}
search: {strategy: grid, max_trials: 2, seed: 0}
"""


class Servers:
    """The sim servers a test runs itself, each in its own process group; ``stop_all`` stops them by that group."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, flags: Mapping[str, FlagValue]) -> str:
        """Start a server with ``flags`` and return its URL at once (readiness is the code under test's job)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [sys.executable, "-m", SIM.module, "--host", "127.0.0.1", "--port", str(port), "--model", MODEL]
        with open(self.folder / f"server-{len(self.processes)}.log", "wb") as log:
            self.processes.append(
                subprocess.Popen(  # noqa: S603 - an argument list
                    [*argv, *SIM.render_flags(flags)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.folder,
                    start_new_session=True,
                )
            )
        return f"http://127.0.0.1:{port}"

    def stop_all(self) -> None:
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def processes_of_this_test() -> set[int]:
    """Living descendants of this test process (zombies are dead: they run nothing)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
    return found


class TestEndpointLauncher(LauncherContract):
    servers: Servers
    before: set[int]  # processes that ran before the test: not the launcher's

    @staticmethod
    def make_launcher() -> EndpointLauncher:
        return EndpointLauncher()

    @pytest.fixture
    def launcher(self, tmp_path: Path) -> Iterator[EndpointLauncher]:
        self.before = processes_of_this_test()
        self.servers = Servers(tmp_path / "servers")
        try:
            yield self.make_launcher()
        finally:
            self.servers.stop_all()  # the test's servers are the test's to stop

    def request(self, tmp_path: Path, **overrides: Any) -> LaunchRequest:
        """Start the server the flags describe; the launcher gets its URL and no flags (see the module docstring)."""
        url = self.servers.start({"time-scale": 0.05, **overrides.pop("flags", {})})
        values: dict[str, Any] = dict(
            run_id="endpoint-test", name="trial-0", profile=SIM, model=MODEL, served_name=MODEL, flags={}, env={},
            log_dir=tmp_path / "logs", extra={"url": url},
        )  # fmt: skip
        values.update(overrides)
        return LaunchRequest(**values)

    def left_running(self, deployment: Deployment) -> list[str]:
        """Processes that appeared during the test and are not the test's own servers: the launcher's, if any."""
        assert isinstance(deployment, EndpointDeployment)
        servers = {p.pid for p in self.servers.processes}
        left = []
        for pid in sorted(processes_of_this_test() - self.before):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(pid) not in servers:
                    left.append(f"pid {pid}: {' '.join(psutil.Process(pid).cmdline())}")
        return left

    # ---- the failure tests, as an endpoint means them

    def test_bad_flag_is_an_invalid_argument(self, launcher: Launcher, tmp_path: Path) -> None:
        """No flag can reach a server the tool did not start: tuning one is refused by validation, located, and a
        request carrying one (a spec's ``engine.args``) is refused by the launcher, not silently dropped."""
        load_spec_text("s.yaml", ENDPOINT_SPEC)  # request.* parameters are fine
        with pytest.raises(SpecError) as caught:
            load_spec_text("s.yaml", ENDPOINT_SPEC.replace("  request.temperature: [0.0, 0.7]", "  no-such-flag: [3]"))
        assert [str(p) for p in caught.value.problems] == [
            "s.yaml:9:3: parameters.no-such-flag: launcher endpoint starts nothing, so launch flags cannot be tuned; "
            "use request.* parameters or another launcher"
        ]
        request = dataclasses.replace(self.request(tmp_path), flags={"no-such-flag": 3})
        with pytest.raises(InfrastructureError, match=r"launch flags --no-such-flag 3 cannot reach the server at http"):
            launcher.start(request)
        assert self.servers.processes[-1].poll() is None  # the server was not touched

    def test_oom_at_start_is_classified(self, launcher: Launcher, tmp_path: Path) -> None:
        """A server that died at start (here of OOM) is, to the tool, a server that is down: no process, no log,
        so no classification; readiness fails quickly, as a timeout naming the URL."""
        request = self.request(tmp_path, flags={"kv-cache-tokens": 1024, "max-num-seqs": 64})
        assert self.servers.processes[-1].wait(timeout=30) == 1  # the test sees its server die; the tool cannot
        started = time.monotonic()
        with launcher.start(request) as deployment, pytest.raises(LaunchFailed) as caught:
            wait_until_ready(deployment, request.profile, timeout=2)
        assert time.monotonic() - started < 10
        assert caught.value.kind is FailureKind.TIMEOUT and caught.value.exit_code is None
        assert request.extra["url"] in caught.value.message
        assert "not started by the tool, so no engine log" in caught.value.log_tail
        assert self.left_running(deployment) == []

    def test_crash_mid_run_is_seen(self, launcher: Launcher, tmp_path: Path) -> None:
        """A server that dies mid-run has no exit code the tool could see: the next request fails, and readiness
        after it fails, naming the URL."""
        request = self.request(tmp_path, flags={"crash-after": 1})
        with launcher.start(request) as deployment:
            wait_until_ready(deployment, request.profile, timeout=60)
            chat(deployment.url, request.served_name, max_tokens=2)
            assert self.servers.processes[-1].wait(timeout=20) == 1
            assert deployment.exit_code() is None
            with pytest.raises(OSError):  # URLError (connection refused) or a reset: both are OSErrors
                chat(deployment.url, request.served_name, max_tokens=2, timeout=10)
            with pytest.raises(LaunchFailed) as caught:
                wait_until_ready(deployment, request.profile, timeout=2)
            assert caught.value.kind is FailureKind.TIMEOUT and deployment.url in caught.value.message
        assert self.left_running(deployment) == []

    # ---- endpoint specifics

    def test_stop_leaves_the_server_serving(self, launcher: EndpointLauncher, tmp_path: Path) -> None:
        request = self.request(tmp_path)
        with launcher.start(request) as deployment:
            wait_until_ready(deployment, request.profile, timeout=60)
        deployment.stop()
        assert self.servers.processes[-1].poll() is None
        assert chat(request.extra["url"], MODEL, max_tokens=2)["usage"]["completion_tokens"] == 2
        assert deployment.read_log() == f"endpoint {request.extra['url']}: not started by the tool, so no engine log\n"

    def test_reap_touches_nothing(self, launcher: EndpointLauncher, tmp_path: Path) -> None:
        request = self.request(tmp_path)
        with launcher.start(request) as deployment:
            wait_until_ready(deployment, request.profile, timeout=60)
            assert EndpointLauncher().reap() == []
            assert self.servers.processes[-1].poll() is None

    def test_no_url_is_refused(self, launcher: EndpointLauncher, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="engine.url"):
            launcher.start(LaunchRequest(**{**self.request(tmp_path).__dict__, "extra": {}}))
