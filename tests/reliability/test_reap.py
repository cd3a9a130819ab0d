"""An engine a killed run started but had not recorded yet is still reaped (and only when its owner is gone).

The process launcher writes an engine's record once the engine runs (the record names its PID); a tuner killed in
between leaves an engine with no record. The engine carries its owner in its environment from its first
instruction, which is what ``autotuner reap`` (and every new run) falls back on. Found by the fault suite
(``benchmarks/faults.py``: SIGKILL of the tuner between trials left an engine running).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from autotuner.launch.ownership import Owner
from autotuner.launch.process import OWNER_VARIABLE


def start_engine(env: dict[str, str]) -> int:
    """A sim engine in its own session whose parent has exited, as after its tuner was killed (so the init
    process, not this test, reaps it once it stops)."""
    spawn = (
        "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"
    )
    command = [sys.executable, "-c", spawn, sys.executable, "-m", "autotuner.engines.sim_server", "--port", "0"]
    return int(subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=60).stdout)


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_an_unrecorded_engine_of_a_dead_owner_is_reaped_and_a_live_ones_is_not(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = Owner(socket.gethostname(), gone.pid, 1.0).label()  # that PID's process is gone (or another one)
    alive = Owner.current().label()
    base = {**os.environ, "AUTOTUNER_STATE_DIR": state}
    orphan = start_engine({**base, OWNER_VARIABLE: f"{dead}|{state}"})
    owned = start_engine({**base, OWNER_VARIABLE: f"{alive}|{state}"})
    elsewhere = start_engine({**base, OWNER_VARIABLE: f"{dead}|{tmp_path / 'other-state'}"})
    engines = (orphan, owned, elsewhere)
    try:
        time.sleep(1.0)
        assert all(running(e) for e in engines)
        result = subprocess.run(
            [sys.executable, "-m", "autotuner", "reap", "--launcher", "process"],
            env=base,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"pid {orphan}" in result.stdout and "not recorded" in result.stdout, result.stdout
        assert not running(orphan)
        assert running(owned)  # its owner (this test) lives
        assert running(elsewhere)  # another state folder: not this reaper's
    finally:
        for engine in engines:
            if running(engine):
                os.killpg(engine, signal.SIGKILL)
