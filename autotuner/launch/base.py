"""The launcher contract: ``start(request) -> Deployment``; a deployment has a URL, a log, and ``stop()``.

Every launcher (process, docker, kubernetes, endpoint) implements the same two classes, and one contract test
suite runs against each, so the trial pipeline never needs to know which one it holds. A deployment is a
context manager: leaving the block stops it, whatever happened inside.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ..engines.profile import EngineProfile, FailureKind, FlagValue


@dataclass(frozen=True)
class Mount:
    """A host path made visible to a containerised engine (model directory, HF cache)."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class LaunchRequest:
    """Everything a launcher needs to start one engine for one trial."""

    run_id: str  # labels what this run starts, so a later run can reap it
    name: str  # e.g. "trial-3": names logs and containers
    profile: EngineProfile
    model: str  # what the engine loads: a path or a hub id
    served_name: str
    flags: Mapping[str, FlagValue]  # fixed args + the config's flags, in that order
    env: Mapping[str, str]  # additions to the engine's environment (see launch.environment)
    log_dir: Path
    startup_timeout: float = 600.0
    python: str | None = None  # process launcher: the interpreter that has the engine installed
    image: str | None = None  # docker / kubernetes
    gpus: int = 0
    mounts: tuple[Mount, ...] = ()
    host: str = "127.0.0.1"
    port: int | None = None  # None: the launcher picks a free one
    extra: Mapping[str, str] = field(default_factory=dict)  # launcher-specific settings


DEFAULT_SHM_SIZE = "8g"  # /dev/shm of a container with a private IPC mode, unless extra["shm_size"] says otherwise


def wants_init(extra: Mapping[str, str]) -> bool:
    """Whether a container gets Docker's init as PID 1 (``extra["init"]``, default true): read in one place so the
    docker launcher and the ``docker run`` command a report shows agree."""
    return extra.get("init", "true").lower() not in ("false", "0", "no")


class LaunchFailed(Exception):
    """The engine did not become ready: a classified outcome of the config, with the evidence."""

    def __init__(self, kind: FailureKind, message: str, log_tail: str = "", exit_code: int | None = None):
        self.kind = kind
        self.message = message
        self.log_tail = log_tail
        self.exit_code = exit_code
        super().__init__(f"{kind.value}: {message}")


class InfrastructureError(Exception):
    """Something the tool needs is missing or broken (no Docker daemon, no cluster): not a trial outcome."""


class Deployment(abc.ABC):
    """A started engine. ``url`` is its base URL (``http://host:port``); ``log_path`` keeps its whole log."""

    url: str
    log_path: Path
    description: str  # e.g. "pid 1234" or "container 1a2b3c"

    @abc.abstractmethod
    def exit_code(self) -> int | None:
        """None while the engine runs; its exit code once it stopped by itself (or was stopped)."""

    @abc.abstractmethod
    def stop(self, grace: float = 15.0) -> None:
        """Stop the engine (politely, then forcefully after ``grace`` seconds) and keep its whole log. Idempotent."""

    def serving(self) -> bool:
        """Launcher-specific proof, beyond a 200 from the health endpoint, that this engine serves (default: none).

        Kubernetes uses it to require a Ready pod whose container really carries the tuned flags.
        """
        return True

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.read_log().splitlines()[-lines:])

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Launcher(abc.ABC):
    """Starts deployments of one kind, and reaps what an earlier, killed run of the tool left behind."""

    kind: str

    @abc.abstractmethod
    def start(self, request: LaunchRequest) -> Deployment:
        """Start the engine and return at once (readiness is ``launch.readiness.wait_until_ready``)."""

    def reap(self) -> list[str]:
        """Stop what runs of the tool that no longer exist left running; returns descriptions of what it stopped."""
        return []
