"""A sandbox for running the real tool as users run it, and for finding what it left behind.

The reliability suite (``faults.py``, ``hostile_specs.py``, ``leaks.py``, ``soak.py``) runs ``python -m autotuner``
in subprocesses. Each run gets its own folder with a private ``AUTOTUNER_STATE_DIR``: the tool records every
engine it starts there, and every process it starts (engines, the genai-bench worker) inherits that variable.
So "what is left" is found exactly, by reading the environment of processes (never by process name), and only
this sandbox's processes are ever signalled, by PID.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
FINISHED = re.compile(r"^trial (\d+): (feasible|infeasible|failed|skipped)\b", re.M)


def spec_text(name: str, *, args: str = "time-scale: 0.05, decode-step-ms: 5", **sections: str) -> str:
    """A small sim spec (flow-style YAML); ``sections`` replace the defaults by top-level key."""
    parts = {
        "name": name,
        "model": "{id: builtin:smollm2}",
        "engine": f"{{runtime: sim, args: {{{args}}}, startup_timeout: 20s}}",
        "parameters": "{max-num-seqs: [1, 2]}",
        "workload": '{scenarios: ["D(32,16)"], concurrency: [2], max_requests: 4, max_time: 1m, warmup_requests: 0}',
        "slo": "{ttft: {p90: 10s}, error_rate: 10%}",
        "objective": "{maximize: output_throughput}",
        "search": "{strategy: grid, baseline: {max-num-seqs: 1}, racing: false, probe: false}",
    }
    parts.update(sections)
    return "".join(f"{key}: {value}\n" for key, value in parts.items())


@dataclass
class Finished:
    code: int
    output: str  # stdout and stderr, interleaved as printed


class Running:
    """A tool process whose output is read by a thread, so the harness can wait for a line without blocking."""

    def __init__(self, command: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(  # noqa: S603 - an argument list
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # signals we send reach the tool only, as a CI runner's would
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with open(self.log, "a", encoding="utf-8") as log:
            for line in self.process.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str | re.Pattern[str], timeout: float) -> bool:
        """True once ``text`` (a substring or a pattern) was printed; False if the tool exited or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.output()
            if text.search(seen) if isinstance(text, re.Pattern) else text in seen:
                return True
            if self.process.poll() is not None and not self._reader.is_alive():
                return False
            time.sleep(0.05)
        return False

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def finish(self, timeout: float) -> Finished:
        """Wait for the exit (SIGKILL to the tool after ``timeout``: a hung tool is a result, not a hung suite)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=30)
            self.lines.append(f"\n[harness] the tool did not exit within {timeout:.0f}s: SIGKILL\n")
        self._reader.join(timeout=10)
        return Finished(code, self.output())


@dataclass
class Sandbox:
    """One run's folder: ``state/`` (engine records), ``reports/``, specs, logs; and its leftovers."""

    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(exist_ok=True)
        self.reports.mkdir(exist_ok=True)

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k != "AUTOTUNER_DEBUG"}
        return {**base, "AUTOTUNER_STATE_DIR": str(self.state), **self.extra_env, **(extra or {})}

    def write_spec(self, name: str, text: str) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(text)
        return path

    def tool(self, *args: str, bootstrap: str | None = None) -> list[str]:
        """``python -m autotuner ARGS``; with ``bootstrap``, that code runs first in the tool's process (a seam for
        faults that need to be inside it, e.g. a port taken between choosing and binding it). ``main()`` reads
        ``sys.argv`` as the program does (``argv`` given would be an in-process call, see ``autotuner.cli.main``)."""
        if bootstrap is None:
            return [sys.executable, "-m", "autotuner", *args]
        code = textwrap.dedent(bootstrap) + "\nfrom autotuner.cli import main\nraise SystemExit(main())\n"
        return [sys.executable, "-c", "import sys\n" + code, *args]

    def tune_args(self, spec: Path, *extra: str) -> list[str]:
        return ["tune", str(spec), "--report-dir", str(self.reports), *extra]

    def start(self, args: list[str], *, env: Mapping[str, str] | None = None, log: str = "tool.log") -> Running:
        return Running(args, env or self.env(), self.root, self.root / log)

    def run(self, args: list[str], *, timeout: float = 300, env: Mapping[str, str] | None = None) -> Finished:
        return self.start(args, env=env).finish(timeout)

    # ------------------------------------------------------------------------------------------ what is left
    def processes(self) -> list[psutil.Process]:
        """Live processes started for this sandbox: they carry its AUTOTUNER_STATE_DIR (the harness excluded)."""
        mine = str(self.state)
        found = []
        for process in psutil.process_iter():
            try:
                if process.pid == os.getpid() or process.status() == psutil.STATUS_ZOMBIE:
                    continue
                if process.environ().get("AUTOTUNER_STATE_DIR") == mine:
                    found.append(process)
            except (psutil.Error, OSError):
                continue
        return found

    def records(self) -> list[Path]:
        """Engine records the tool did not clear (an engine it believes may still run)."""
        return sorted(self.state.glob("process-*.json"))

    def left(self, settle: float = 10.0) -> list[str]:
        """What is still running after ``settle`` seconds (helpers that die with their parent get that long)."""
        deadline = time.monotonic() + settle
        while True:
            alive = self.processes()
            if not alive or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        described = []
        for process in alive:
            try:
                described.append(f"pid {process.pid}: {' '.join(process.cmdline())[:120]}")
            except psutil.Error:
                continue
        return described

    def reap(self) -> Finished:
        """``autotuner reap --launcher process``, as the next run would do first."""
        return self.run(self.tool("reap", "--launcher", "process"), timeout=120)

    def kill_leftovers(self) -> None:
        """Last resort after a failed check: SIGKILL this sandbox's processes, by PID."""
        for process in self.processes():
            try:
                process.send_signal(signal.SIGKILL)
            except psutil.Error:
                continue

    def files(self) -> Iterable[Path]:
        return (p for p in self.root.rglob("*") if p.is_file())

    def results(self, spec_name: str) -> Path:
        return self.reports / spec_name / "latest" / "results.json"


def finished_trials(output: str) -> set[int]:
    """Trial numbers the tool reported as finished (``trial 3: feasible ...``): each must be kept somewhere."""
    return {int(m.group(1)) for m in FINISHED.finditer(output)}


def kept_trials(results: Path) -> set[int] | None:
    """Trial numbers in a results.json; None when it is missing or unreadable (which is itself a failure)."""
    from autotuner.results import StudyResult

    try:
        return {t.number for t in StudyResult.read(results).trials}
    except (OSError, ValueError):
        return None


def child_processes(pid: int, match: Callable[[str], bool]) -> list[psutil.Process]:
    """Descendants of ``pid`` whose command line matches (used to find the genai-bench worker of a tool run)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if match(" ".join(child.cmdline())):
                found.append(child)
        except psutil.Error:
            continue
    return found
