"""The process launcher: an engine as a child process in its own process group, on a free port.

Stopping sends SIGTERM to the whole group (engines spawn workers; vLLM cleans its shared memory only on SIGTERM),
then SIGKILL after a grace period. Every group is recorded (see ``ownership``) until it is gone, so a run killed
with SIGKILL leaves nothing that the next run does not find and stop. The record can only be written once the
engine runs (it names its PID), so each engine also carries its owner in its environment
(``AUTOTUNER_ENGINE_OWNER``) from its first instruction: a run killed between starting an engine and recording
it leaves an engine that ``reap`` still finds (the reliability suite hit that window with SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from ..atomic import held_signals
from ..secrets import Masker
from .base import Deployment, InfrastructureError, Launcher, LaunchRequest
from .ownership import Owner, ProcessRecord, create_time, state_dir

# "<host:pid:start-time of the tuner>|<its state folder>": the state folder scopes reaping as records are scoped
OWNER_VARIABLE = "AUTOTUNER_ENGINE_OWNER"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the engine binds it a moment later; collisions are classified)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace: float, leader: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for all of it to exit, then SIGKILL what remains."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if leader is not None:
                leader.poll()  # reap the leader so its zombie does not keep the group "alive"
            if not group_alive(pgid):
                return
            time.sleep(0.05)


class ProcessDeployment(Deployment):
    def __init__(
        self, request: LaunchRequest, process: subprocess.Popen[bytes], port: int, log_path: Path, record: ProcessRecord
    ):
        self.request = request
        self.process = process
        self.url = f"http://{request.host}:{port}"
        self.port = port
        self.log_path = log_path
        self.description = f"{request.profile.runtime} pid {process.pid}"
        self.record = record
        self._stopped = False

    def exit_code(self) -> int | None:
        return self.process.poll()

    def stop(self, grace: float = 15.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            stop_group(self.process.pid, grace, self.process)
        finally:
            self.process.poll()
            self.record.forget()
            _mask_file(self.log_path)


def _mask_file(path: Path) -> None:
    """Engines may echo their environment or arguments: no secret stays in a kept log."""
    masker = Masker.from_environ()
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8", errors="replace")
        masked = masker.mask(text)
        if masked != text:
            path.write_text(masked, encoding="utf-8")


class ProcessLauncher(Launcher):
    kind = "process"

    def start(self, request: LaunchRequest) -> ProcessDeployment:
        port = request.port or free_port(request.host)
        python = request.python or sys.executable
        argv = request.profile.argv(
            python,
            model=request.model,
            served_name=request.served_name,
            host=request.host,
            port=port,
            flags=request.flags,
        )
        request.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = request.log_dir / f"{request.name}.engine.log"
        owner = Owner.current().label()
        env = {**os.environ, **request.profile.env, **request.env, OWNER_VARIABLE: f"{owner}|{state_dir()}"}
        # Ctrl-C and SIGTERM wait until the engine is started and recorded: one landing in Popen (which waits for
        # the child's exec) or before the deployment existed left an engine running that nobody stopped (the
        # reliability suite's "SIGINT between trials" hit it about one run in ten). Raised once the deployment
        # exists, the interrupt stops it here, then goes on; so does any failure after the engine was started.
        process: subprocess.Popen[bytes] | None = None
        deployment: ProcessDeployment | None = None
        try:
            with held_signals(), open(log_path, "wb") as log:
                log.write(f"$ {' '.join(argv)}\n".encode())
                log.flush()
                try:
                    process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell string
                        argv,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        cwd=request.log_dir,
                        start_new_session=True,
                    )
                except FileNotFoundError as exc:
                    raise InfrastructureError(
                        f"cannot start {request.profile.runtime}: {exc.filename} not found "
                        "(set engine.python to the interpreter that has the engine)"
                    ) from None
                record = ProcessRecord(
                    request.run_id,
                    request.name,
                    process.pid,
                    os.getpgid(process.pid),
                    create_time(process.pid) or time.time(),
                    owner,
                )
                record.save()
                deployment = ProcessDeployment(request, process, port, log_path, record)
        except BaseException:  # an interrupt, or no record (a full disk): the engine must not run on
            if deployment is not None:
                deployment.stop()
            elif process is not None:
                stop_group(process.pid, 5.0, process)  # its own session: its process group is its PID
            raise
        return deployment

    def reap(self) -> list[str]:
        stopped = []
        for record in ProcessRecord.all():
            owner = Owner.parse(record.owner)
            if owner is not None and owner.alive():
                continue
            # Signal the group only if its leader is still the process we started, or if the leader is gone and
            # only its children remain (a PID that was reused leads a group of its own: leave it alone).
            if record.same_process() or (not psutil.pid_exists(record.pid) and group_alive(record.pgid)):
                stop_group(record.pgid, grace=10.0)
                stopped.append(f"{record.name} (pid {record.pid}, run {record.run_id})")
            record.forget()
        return stopped + reap_unrecorded()


def reap_unrecorded() -> list[str]:
    """Stop the process groups of engines whose owner is gone but that have no record (see the module docstring).

    They are found by the owner label in their environment, which only processes this launcher started carry,
    and signalled by process group; the label's start time makes a reused tuner PID harmless. Only engines of
    this state folder are considered, as with records (tests and users with separate folders stay apart).
    """
    groups: dict[int, str] = {}
    here = str(state_dir())
    for process in psutil.process_iter():
        try:
            label, _, folder = process.environ().get(OWNER_VARIABLE, "").partition("|")
            if not label or folder != here:
                continue
            owner = Owner.parse(label)
            if owner is None or owner.alive():
                continue
            groups.setdefault(os.getpgid(process.pid), f"pid {process.pid}, {' '.join(process.cmdline())[:80]}")
        except (psutil.Error, OSError):
            continue
    groups.pop(os.getpgrp(), None)  # never our own group
    for pgid in groups:
        stop_group(pgid, grace=10.0)
    return [f"an engine started but not recorded by a killed run ({what})" for what in groups.values()]
