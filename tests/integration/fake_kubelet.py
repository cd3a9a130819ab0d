"""The fake cluster's kubelet and container runtime: a pod's container run as a real local process group.

Why: a launcher contract test must see a real engine start, serve, log, die and stop. A scripted pod status can
only say what the test already decided; a process shows what the engine really does with the tuned command line.

What stands for what:

- the image's interpreter: the command's first token is looked up in ``BINARIES`` (``python3`` -> this test's
  ``sys.executable``); the image's files: ``PYTHONPATH`` set to this repository (as if the image had it installed);
  a binary the "image" lacks fails the way containerd reports it (terminated, exit code 128, reason StartError);
- the container's environment: only the image's variables, ``HOSTNAME`` (the pod name) and the container's
  ``env`` (``$(VAR)`` references in ``command``/``args`` expanded from it, as the kubelet does). Nothing of the
  test's own environment leaks in, so a secret reaches the engine only through a Secret, as on a real cluster;
- the pod's network namespace: engines listen on ``0.0.0.0:8080`` in a pod (OME's runtimes, probes and Services
  expect that port). Here ``--host 0.0.0.0`` becomes ``127.0.0.1`` and ``--port 8080`` a free local port, in the
  argv actually run only: the pod spec the API shows keeps what the InferenceService asked for;
- the container's root filesystem: a fresh temporary working directory; its log: stdout and stderr in one file,
  what ``kubectl logs`` reads;
- the pid namespace: the container is its own process group (``start_new_session``). Stopping sends SIGTERM to
  the container's first process only (what the runtime does: PID 1 gets the stop signal), and SIGKILL to the whole
  group after the termination grace; once the first process exits, the rest of the group is killed, as the kernel
  does when a pid namespace's init dies.

A container that exits is reported as terminated with its exit code and reason ``Error`` (``Completed`` for 0),
never ``OOMKilled``: the kernel's OOM killer acting on a cgroup limit is the only source of that reason, and nothing
here has one. An engine that runs out of memory says so in its own log, which is what ``EngineProfile.classify``
reads. Unlike a real kubelet this one does not restart the container (``restartPolicy: Always``) after its back-off:
it keeps showing the first termination, the state the launcher acts on (a restart is a different engine).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autotuner.launch.process import group_alive

REPO = Path(__file__).resolve().parents[2]
CONTAINER_PORT = "8080"  # OME's engine port, inside the pod
BINARIES = {"python3": sys.executable, "python": sys.executable}  # what the fake "image" has on its PATH
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    """The fake's own free-port pick (not the product's), so a bug there cannot hide here."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion: defined variables are replaced, ``$$`` is a literal ``$``, unknown
    references stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REFERENCE.sub(replace, text)


def localize(argv: list[str], port: int) -> list[str]:
    """The argv as run here: the pod's ``0.0.0.0:8080`` becomes ``127.0.0.1:<port>`` (see the module docstring)."""
    out = list(argv)
    for index, token in enumerate(out):
        following = out[index + 1] if index + 1 < len(out) else None
        if token == "--port" and following == CONTAINER_PORT:
            out[index + 1] = str(port)
        elif token == f"--port={CONTAINER_PORT}":
            out[index] = f"--port={port}"
        elif token == "--host" and following == "0.0.0.0":
            out[index + 1] = "127.0.0.1"
        elif token == "--host=0.0.0.0":
            out[index] = "--host=127.0.0.1"
    return out


@dataclass
class Container:
    """One run of a pod's engine container. ``start`` once; ``state``/``ready``/``log`` are what the kubelet reports."""

    pod: str
    service: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    root: Path  # this container's folder: ``rootfs/`` (the working directory) and ``container.log``
    grace: float = 30.0  # terminationGracePeriodSeconds
    port: int = field(default_factory=free_port)  # the host port standing for the container's 8080
    argv: list[str] = field(default_factory=list)  # what really runs
    process: subprocess.Popen[bytes] | None = None
    start_error: str | None = None
    started_at: str = ""
    finished_at: str = ""
    # Once the group was seen empty its number may become another process group's: never signal or probe it again.
    gone: bool = False

    @property
    def log_path(self) -> Path:
        return self.root / "container.log"

    def start(self) -> None:
        (self.root / "rootfs").mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        self.started_at = now_stamp()
        rootfs = str(self.root / "rootfs")
        image_env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(REPO), "HOME": rootfs}
        environ = {**image_env, "HOSTNAME": self.pod, **self.env}
        argv = localize([expand(token, self.env) for token in [*self.command, *self.args]], self.port)
        binary = BINARIES.get(argv[0]) if argv else None
        if binary is None:
            self.start_error = (
                f'failed to create containerd task: exec: "{argv[0] if argv else ""}": '
                "executable file not found in $PATH"
            )
            self.finished_at = now_stamp()
            return
        self.argv = [binary, *argv[1:]]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the pod's argument list, never a shell
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environ,
                cwd=rootfs,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        """None while the first process runs; its exit code as a container runtime reports it (128+N for signal N)."""
        if self.start_error is not None:
            return 128
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            return None
        if not self.finished_at:
            self.finished_at = now_stamp()
            self._kill_group()  # PID 1 is gone: the pid namespace goes with it
        return 128 - code if code < 0 else code

    def state(self) -> dict[str, Any]:
        """The container's ``state`` as in a pod's ``status.containerStatuses``."""
        code = self.exit_code()
        if code is None:
            return {"running": {"startedAt": self.started_at}}
        terminated: dict[str, Any] = {"exitCode": code, "startedAt": self.started_at, "finishedAt": self.finished_at}
        if self.start_error is not None:
            terminated.update(reason="StartError", message=self.start_error)
        else:
            terminated["reason"] = "Completed" if code == 0 else "Error"
        return {"terminated": terminated}

    def ready(self) -> bool:
        """No readiness probe in the pod (the manifest sets none): ready as long as the container runs, as the
        kubelet does. Whether the engine serves is for the launcher's own health check to find out."""
        return self.exit_code() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        """Whether any process of this container still exists (the first one is reaped first, so no zombie counts)."""
        if self.process is None or self.gone:
            return False
        self.exit_code()
        self.gone = not group_alive(self.process.pid)
        return not self.gone

    def stop(self, grace: float | None = None) -> None:
        """The kubelet's ``killContainer``: SIGTERM to the first process, SIGKILL to the group after the grace."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=self.grace if grace is None else grace)
        self._kill_group()
        deadline = time.monotonic() + 5
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.exit_code()

    def _kill_group(self) -> None:
        if self.process is not None and not self.gone:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
