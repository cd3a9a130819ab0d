"""Run ``genai-bench benchmark`` invocations: in a long-lived worker process, or one plain subprocess each.

genai-bench always runs in another process (importing it monkey-patches ours with gevent). A plain invocation
costs ~13 s outside the load (imports, Excel, plots, fixed pauses), so :class:`GenaiBench` keeps one worker
(``genai_bench_worker.py``, run by file path) that imports genai-bench once and runs one benchmark per request.
When the worker cannot start (genai-bench missing from that interpreter, a patched name renamed by an upgrade,
a crash at import) it falls back to ``genai-bench benchmark`` subprocesses for the rest of its life and says so
in the log: slower, never wrong.

Both modes: the child runs in its own process group (stopped by that group's id, never by name), with stdin
closed (a missing option makes genai-bench prompt; here the prompt fails instead of hanging), its console output
appended to a file, and a deadline after which the group is killed and the invocation reported as timed out.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..launch.process import stop_group
from ..secrets import Masker

LOG = logging.getLogger(__name__)
WORKER_SCRIPT = Path(__file__).with_name("genai_bench_worker.py")
WORKER_START_TIMEOUT = 180.0  # imports take ~3-5 s; a loaded CI machine may take much longer


class BenchError(Exception):
    """genai-bench cannot be run at all (not installed where we looked): an infrastructure error, not a result."""


@dataclass(frozen=True)
class Invocation:
    """One ``genai-bench benchmark`` call: its options in command-line order, where it runs, and its deadline."""

    args: tuple[str, ...]
    cwd: Path
    console: Path  # genai-bench's stdout and stderr are appended here
    env: Mapping[str, str]  # the child's whole environment
    timeout: float  # seconds before the process group is killed


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended. ``status`` is the exit status; None when it was killed at its deadline."""

    status: int | None
    error: str | None
    seconds: float
    mode: str  # "worker" or "subprocess"

    @property
    def timed_out(self) -> bool:
        return self.status is None


def genai_bench_python(explicit: str | None = None) -> str:
    """The interpreter that has genai-bench: ``explicit``, ours if it has genai-bench, else the one that
    ``genai-bench`` on PATH was installed with (its ``#!`` line). Raises :class:`BenchError` saying where it looked.
    """
    if explicit:
        return explicit
    if importlib.util.find_spec("genai_bench") is not None:  # finds it without importing (and monkey-patching)
        return sys.executable
    executable = shutil.which("genai-bench")
    if executable:
        with contextlib.suppress(OSError), open(executable, "rb") as script:
            first = script.readline().decode("utf-8", "replace").strip()
            if first.startswith("#!") and "python" in first:
                return first[2:].strip().split()[0]
    raise BenchError(
        f"genai-bench is not importable by {sys.executable} and no `genai-bench` script on PATH names its "
        f"interpreter (looked at {executable or 'nothing: not on PATH'}); pip install 'genai-bench>=0.0.5,<0.1'"
    )


def genai_bench_command(python: str) -> list[str]:
    """The plain CLI: ``genai-bench`` next to the interpreter or on PATH, else ``python -m genai_bench.cli.cli``."""
    beside = Path(python).parent / "genai-bench"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [python, "-m", "genai_bench.cli.cli"]  # the module ends with `cli()` under `if __name__ == "__main__"`


class _Worker:
    """One worker process: requests on its stdin, replies read by a thread into a queue (so waits can time out)."""

    def __init__(self, python: str, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - an argument list
                [python, str(WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                cwd=str(log_path.parent),
                start_new_session=True,
            )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True, name="genai-bench-worker").start()
        self.ready: bool | None = None  # None until the start-up line arrived
        self.info: dict[str, Any] = {}
        self.announced = False

    def _read(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        for raw in stream:
            try:
                message = json.loads(raw)
            except ValueError:
                continue  # not ours (the worker keeps its protocol clean; this is belt and braces)
            if isinstance(message, dict):
                self.replies.put(message)
        self.replies.put(None)  # end of output: the worker exited

    def wait_ready(self, timeout: float) -> str | None:
        """None when the worker is ready; otherwise why it is not (it is then stopped)."""
        if self.ready is None:
            try:
                message = self.replies.get(timeout=timeout)
            except queue.Empty:
                message = {"ready": False, "error": f"no start-up message within {timeout:.0f} s"}
            if message is None:
                message = {"ready": False, "error": f"exited with code {self.process.wait()} while starting"}
            self.ready = bool(message.get("ready"))
            self.info = message
            if not self.ready:
                self.stop(idle=False)
        return None if self.ready else str(self.info.get("error") or "did not start")

    def call(self, request: dict[str, Any], timeout: float, heartbeat: Callable[[float], None] | None) -> Outcome:
        started = time.monotonic()
        try:
            assert self.process.stdin is not None
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError as exc:
            self.stop(idle=False)
            return Outcome(1, f"the genai-bench worker is gone ({exc})", time.monotonic() - started, "worker")
        while True:
            waited = time.monotonic() - started
            if waited >= timeout:
                self.stop(idle=False)
                return Outcome(None, f"did not finish within {timeout:.0f} s", waited, "worker")
            try:
                reply = self.replies.get(timeout=min(1.0, timeout - waited))
            except queue.Empty:
                if heartbeat is not None:
                    heartbeat(time.monotonic() - started)
                continue
            seconds = time.monotonic() - started
            if reply is None:
                code = self.process.wait()
                return Outcome(1, f"the genai-bench worker died (exit code {code})", seconds, "worker")
            status = reply.get("status")
            return Outcome(int(status) if isinstance(status, int) else 1, reply.get("error"), seconds, "worker")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, idle: bool = True) -> None:
        """End the worker: an idle one by closing its input (it exits by itself), a busy one at once; then its
        process group, whatever is left of it."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        if idle:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        stop_group(self.process.pid, grace=5.0, leader=self.process)
        self.process.poll()


class GenaiBench:
    """Runs genai-bench invocations, reusing one worker process across levels (and trials, when kept open).

    ``start(env, log_path)`` begins the worker's start-up without waiting (its ~4 s of imports then overlap the
    engine's start and the warm-up); ``run`` waits for it when the first level needs it. A worker is bound to the
    environment it was started with (Hugging Face libraries read ``HF_HUB_OFFLINE`` at import time), so a call
    with another environment replaces it. ``use_worker=False`` runs plain ``genai-bench benchmark`` subprocesses
    (what genai-bench costs without this module; ``benchmarks/trial_overhead.py --plain`` measures it).
    """

    def __init__(
        self,
        python: str | None = None,
        *,
        use_worker: bool = True,
        start_timeout: float = WORKER_START_TIMEOUT,
    ) -> None:
        self.python = genai_bench_python(python)
        self.use_worker = use_worker
        self.start_timeout = start_timeout
        self.fallback_reason: str | None = None if use_worker else "disabled by the caller"
        self._worker: _Worker | None = None
        self._logs: list[tuple[Path, Masker]] = []

    @property
    def mode(self) -> str:
        return "worker" if self.fallback_reason is None else "subprocess"

    def start(self, env: Mapping[str, str], log_path: Path) -> None:
        """Start a worker for ``env`` now (no wait), unless one for it runs or workers are not used."""
        if self.fallback_reason is not None:
            return
        if self._worker is not None and self._worker.env == dict(env) and self._worker.alive():
            return
        self._stop_worker()
        self._worker = _Worker(self.python, env, log_path)
        self._logs.append((log_path, Masker.from_environ(env)))

    def prepare(self, env: Mapping[str, str], log_path: Path, note: Callable[[str], None] | None = None) -> str | None:
        """Start a worker for ``env`` and wait until it is ready. None when it is; else why it fell back to
        plain subprocesses (also reported to ``note`` and the log)."""
        if self.fallback_reason is not None:
            return self.fallback_reason
        self.start(env, log_path)
        assert self._worker is not None
        problem = self._worker.wait_ready(self.start_timeout)
        if problem is None:
            if note is not None and not self._worker.announced:
                self._worker.announced = True
                note(
                    f"genai-bench {self._worker.info.get('genai_bench')} worker ready "
                    f"(pid {self._worker.process.pid}, imports {self._worker.info.get('import_seconds')} s)"
                )
            return None
        self.fallback_reason = f"the genai-bench worker could not start: {problem} (its log: {log_path})"
        self._worker = None
        message = f"{self.fallback_reason}; running plain `genai-bench benchmark` per level instead (~13 s slower each)"
        LOG.warning("%s", message)
        if note is not None:
            note(message)
        return self.fallback_reason

    def run(
        self,
        invocation: Invocation,
        *,
        worker_log: Path,
        heartbeat: Callable[[float], None] | None = None,
        note: Callable[[str], None] | None = None,
    ) -> Outcome:
        """Run one invocation; ``note`` hears about worker start-up and fallback, ``heartbeat`` every second."""
        invocation.console.parent.mkdir(parents=True, exist_ok=True)
        if self.prepare(invocation.env, worker_log, note) is None:
            assert self._worker is not None
            request = {"args": list(invocation.args), "cwd": str(invocation.cwd), "console": str(invocation.console)}
            outcome = self._worker.call(request, invocation.timeout, heartbeat)
            if outcome.status != 0 or not self._worker.alive():
                self._stop_worker()  # after a failed benchmark the worker exits; the next call starts another
            return outcome
        return self._subprocess(invocation, heartbeat)

    def _subprocess(self, invocation: Invocation, heartbeat: Callable[[float], None] | None) -> Outcome:
        command = [*genai_bench_command(self.python), "benchmark", *invocation.args]
        started = time.monotonic()
        with open(invocation.console, "ab") as console:
            try:
                process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell string
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    env=dict(invocation.env),
                    cwd=str(invocation.cwd),
                    start_new_session=True,
                )
            except OSError as exc:
                raise BenchError(f"cannot run {command[0]}: {exc}") from None
        try:
            while True:
                waited = time.monotonic() - started
                if waited >= invocation.timeout:
                    return Outcome(None, f"did not finish within {invocation.timeout:.0f} s", waited, "subprocess")
                try:
                    code = process.wait(timeout=min(1.0, invocation.timeout - waited))
                except subprocess.TimeoutExpired:
                    if heartbeat is not None:
                        heartbeat(time.monotonic() - started)
                    continue
                error = None if code == 0 else f"genai-bench exited with code {code}"
                return Outcome(code, error, time.monotonic() - started, "subprocess")
        finally:
            stop_group(process.pid, grace=5.0, leader=process)  # also whatever it left behind in its group

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def close(self) -> None:
        """Stop the worker (if any) and mask the worker logs this object wrote."""
        self._stop_worker()
        for path, masker in self._logs:
            mask_file(path, masker)
        self._logs.clear()

    def __enter__(self) -> GenaiBench:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def mask_file(path: Path, masker: Masker) -> None:
    """Rewrite ``path`` with every secret masked (only when one is present); missing files are fine."""
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8", errors="replace")
        masked = masker.mask(text)
        if masked != text:
            path.write_text(masked, encoding="utf-8")


def command_line(args: Sequence[str]) -> str:
    """How an invocation reads in logs: ``genai-bench benchmark --api-backend vllm ...`` (quoted where needed)."""
    import shlex

    return " ".join(["genai-bench", "benchmark", *(shlex.quote(a) for a in args)])
