"""Interrupting the tool at any moment stops the engine it started; a SIGKILLed run's engine is reaped later.

The tool runs as users run it (`autotuner serve`, a real console-script process) with the `sim` engine, and is
signalled while the engine starts and while it serves. What is left is checked through the process records and
the process table, never by process name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

SPEC = """\
name: sim-interrupts
model: {id: builtin:smollm2}
engine: {runtime: sim, args: {time-scale: 0.05, startup-delay: STARTUP}}
parameters: {max-num-seqs: [4, 8]}
workload: {scenarios: ["D(64,64)"], concurrency: [1]}
search: {baseline: {max-num-seqs: 4}}
"""


def start_serve(tmp_path: Path, startup_delay: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("STARTUP", str(startup_delay)))
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(tmp_path / "state")}
    tool = subprocess.Popen(
        [sys.executable, "-m", "autotuner", "serve", str(spec), "--log-dir", str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    return tool, env


def engine_pids(tmp_path: Path) -> list[int]:
    """Engines the tool recorded (records are written right after each engine starts)."""
    folder = tmp_path / "state"
    return [json.loads(p.read_text())["pid"] for p in folder.glob("process-*.json")] if folder.exists() else []


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def read_until(tool: subprocess.Popen[str], text: str, timeout: float = 30.0) -> str:
    assert tool.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = tool.stdout.readline()
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not printed; got {seen!r}")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def cleanup() -> list[int]:
    """Process groups to kill if a test fails half-way (by PID, never by name)."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_while_serving_stops_the_engine(tmp_path: Path, sig: signal.Signals, cleanup: list[int]) -> None:
    tool, _ = start_serve(tmp_path, startup_delay=0)
    cleanup.append(tool.pid)
    read_until(tool, "ready in")
    (engine,) = engine_pids(tmp_path)
    cleanup.append(engine)
    assert alive(engine)
    tool.send_signal(sig)
    assert tool.wait(timeout=30) == 0
    assert not alive(engine)
    assert engine_pids(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_starting_stops_the_engine(tmp_path: Path, sig: signal.Signals, cleanup: list[int]) -> None:
    tool, _ = start_serve(tmp_path, startup_delay=60)
    cleanup.append(tool.pid)
    wait_for(lambda: len(engine_pids(tmp_path)) == 1)
    (engine,) = engine_pids(tmp_path)
    cleanup.append(engine)
    tool.send_signal(sig)
    assert tool.wait(timeout=30) == 0
    assert not alive(engine)


def test_sigkill_leaves_a_record_that_reap_acts_on(tmp_path: Path, cleanup: list[int]) -> None:
    tool, env = start_serve(tmp_path, startup_delay=0)
    cleanup.append(tool.pid)
    read_until(tool, "ready in")
    (engine,) = engine_pids(tmp_path)
    cleanup.append(engine)
    tool.kill()
    tool.wait(timeout=10)
    assert alive(engine), "a SIGKILLed tool cannot stop its engine: the next run must"
    result = subprocess.run(
        [sys.executable, "-m", "autotuner", "reap", "--launcher", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pid {engine}" in result.stdout
    wait_for(lambda: not alive(engine), timeout=15)
    assert engine_pids(tmp_path) == []


def test_next_serve_reaps_what_a_killed_one_left(tmp_path: Path, cleanup: list[int]) -> None:
    first, _ = start_serve(tmp_path, startup_delay=0)
    cleanup.append(first.pid)
    read_until(first, "ready in")
    (orphan,) = engine_pids(tmp_path)
    cleanup.append(orphan)
    first.kill()
    first.wait(timeout=10)
    second, _ = start_serve(tmp_path, startup_delay=0)
    cleanup.append(second.pid)
    output = read_until(second, "ready in")
    assert "stopped an engine left by an earlier run: serve-" in output and f"pid {orphan}" in output
    assert not alive(orphan)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
