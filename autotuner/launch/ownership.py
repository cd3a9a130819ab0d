"""Who started what, so a new run can stop what a killed run left behind without touching anyone else's.

A run that dies by SIGKILL cannot clean up. Everything it starts is therefore recorded with its owner (host,
PID and start time of the tuner process: PIDs are reused, start times are not): processes in a small file per
engine under the state folder, containers in their labels. A later run reaps only entries whose owner is gone,
and checks the engine's own start time before signalling, so a reused PID is never hit. Never by name.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from ..atomic import replace_file


def state_dir() -> Path:
    """Where running engines are recorded: ``$AUTOTUNER_STATE_DIR`` or ``~/.cache/autotuner/running``."""
    configured = os.environ.get("AUTOTUNER_STATE_DIR")
    path = Path(configured) if configured else Path.home() / ".cache" / "autotuner" / "running"
    path.mkdir(parents=True, exist_ok=True)
    return path


def create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), create_time(os.getpid()) or 0.0)

    def label(self) -> str:
        return f"{self.host}:{self.pid}:{self.started:.2f}"

    @classmethod
    def parse(cls, label: str) -> Owner | None:
        try:
            host, pid, started = label.rsplit(":", 2)
            return cls(host, int(pid), float(started))
        except ValueError:
            return None

    def alive(self) -> bool:
        """True when this owner still runs (or runs on another host, which we cannot tell: assume alive)."""
        if self.host != socket.gethostname():
            return True
        started = create_time(self.pid)
        return started is not None and abs(started - self.started) < 0.05


@dataclass(frozen=True)
class ProcessRecord:
    """An engine process group started by ``owner`` for ``run_id``."""

    run_id: str
    name: str
    pid: int
    pgid: int
    started: float
    owner: str  # Owner.label()

    @property
    def path(self) -> Path:
        return state_dir() / f"process-{self.pid}-{int(self.started)}.json"

    def save(self) -> None:
        replace_file(self.path, json.dumps(asdict(self)))

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)

    def same_process(self) -> bool:
        """True when ``pid`` is still the very process we started (not a reused PID)."""
        started = create_time(self.pid)
        return started is not None and abs(started - self.started) < 0.05

    @classmethod
    def all(cls) -> list[ProcessRecord]:
        records = []
        for path in sorted(state_dir().glob("process-*.json")):
            try:
                records.append(cls(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)  # a torn write from a killed run: nothing we can act on
        return records
