"""Fault injection against the real tool: what goes wrong in a long tuning run, and what the tool keeps.

A tuning run holds expensive GPUs for hours; it must survive what goes wrong and leave nothing running. Each
scenario runs ``python -m autotuner tune`` (the real CLI, the process launcher, real genai-bench, the ``sim``
engine with its injectable faults) in a :class:`~sandbox.Sandbox`, injects one fault, and reports a row:

    fault       what was injected
    outcome     what the tool did (exit code, the trial's recorded outcome and reason)
    lost        trials the tool reported finished that are neither in results.json nor in the study's storage
                (target 0)
    left        processes of the run still alive once the tool exited (after ``autotuner reap`` when the tool
                itself was SIGKILLed, as the next run would do), plus engine records not cleared (target 0)

Faults: engine crash at start, OOM, hang (never ready), crash mid-level, engine errors, a port taken between
choosing and binding it, the genai-bench worker killed (SIGKILL) or exiting non-zero (SIGTERM) mid-level with
partial files, SIGINT/SIGTERM/SIGKILL of the tuner at each stage, PostgreSQL restarted mid-study (a private
cluster from ``.ci/postgres.sh``), the report dir's disk full (a small tmpfs; needs root), and the Docker daemon
stopped mid-run (a private dockerd; needs dockerd and root).

    python benchmarks/faults.py                 # every scenario; prints the table (exit 1 if a row misses)
    python benchmarks/faults.py --quick         # the subset tests/reliability/test_faults.py runs
    python benchmarks/faults.py engine-faults disk-full

Rows marked "also:" name the existing test that covers the same fault; ``--quick`` leaves those out.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sandbox import Finished, Sandbox, child_processes, finished_trials, kept_trials, spec_text  # noqa: E402

from autotuner.results import StudyResult, TrialRecord  # noqa: E402

SLOW_LEVEL = "time-scale: 1, decode-step-ms: 20"  # D(32,16) at concurrency 2: ~0.35 s a request, 2 at a time


@dataclass
class Row:
    fault: str
    outcome: str
    lost: int
    left: int
    problems: list[str] = field(default_factory=list)  # expectations missed besides lost/left
    also: str = ""  # an existing test that covers the same fault
    seconds: float = 0.0
    # Known issues in code this suite does not own (reported to its owners): shown, not failed on.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost == 0 and self.left == 0


@dataclass
class Settled:
    """What a finished run kept and left, computed once for the rows of a scenario."""

    finished: Finished
    lost: set[int]
    left: list[str]
    kept: set[int] | None


def settle(
    box: Sandbox, run: Finished, spec_name: str, *, stored: set[int] | None = None, settle_s: float = 10.0
) -> Settled:
    """Compare what the tool said it finished with what it kept; list what is left; then clean up by PID."""
    kept = kept_trials(box.results(spec_name))
    done = finished_trials(run.output)
    lost = done - (kept or set()) - (stored or set())
    left = box.left(settle_s) + [f"engine record {p.name}" for p in box.records()]
    box.kill_leftovers()
    return Settled(run, lost, left, kept)


def row(fault: str, outcome: str, settled: Settled, problems: list[str], started: float, also: str = "") -> Row:
    return Row(fault, outcome, len(settled.lost), len(settled.left), problems, also, time.monotonic() - started)


def _detail(settled: Settled) -> list[str]:
    """The evidence for a row whose numbers miss: what was lost and what is still running."""
    notes = [f"lost trials {sorted(settled.lost)}"] if settled.lost else []
    return notes + [f"left: {item}" for item in settled.left]


def _trials(box: Sandbox, spec_name: str) -> list[TrialRecord]:
    path = box.results(spec_name)
    try:
        return list(StudyResult.read(path).trials)
    except (OSError, ValueError) as exc:
        print(f"[harness] {path}: {exc}", file=sys.stderr)
        return []


# ----------------------------------------------------------------------------------------------- engine faults
ENGINE_FAULTS: dict[str, tuple[dict[str, object], tuple[str, str]]] = {
    # fault: (the config's distinguishing values, what the record must say)
    "engine crash at start": ({"env.PYTHONHOME": "/nonexistent"}, ("failed", "crash")),
    "engine OOM at start": ({"max-num-seqs": 64}, ("failed", "oom")),
    "engine hangs, never ready": ({"startup-delay": 3600}, ("failed", "timeout")),
    "engine crashes mid-level": ({"crash-after": 3}, ("not feasible", "")),
    "engine errors on 50% of requests": ({"error-rate": 0.5}, ("infeasible", "error_rate")),
}


def engine_faults(root: Path) -> list[Row]:
    """One study whose grid holds a healthy baseline and one config per engine fault (a constraint keeps each
    config to at most one fault): every fault must become that trial's recorded outcome, and the study goes on."""
    started = time.monotonic()
    box = Sandbox(root)
    name = "rel-engine-faults"
    spec = box.write_spec(
        name,
        spec_text(
            name,
            engine="{runtime: sim, args: {time-scale: 0.05, decode-step-ms: 5, kv-cache-tokens: 65536}, "
            "startup_timeout: 4s}",
            parameters="{max-num-seqs: [2, 64], startup-delay: [0, 3600], error-rate: [0.0, 0.5], "
            'crash-after: [100000, 3], env.PYTHONHOME: ["", /nonexistent]}',
            constraints='["(max-num-seqs > 2) + (startup-delay > 0) + (error-rate > 0) + (crash-after < 100) '
            "+ (env.PYTHONHOME != '') <= 1\"]",
            workload='{scenarios: ["D(32,16)"], concurrency: [2], max_requests: 8, max_time: 1m, warmup_requests: 0}',
            search="{strategy: grid, baseline: {max-num-seqs: 2, startup-delay: 0, error-rate: 0.0, "
            'crash-after: 100000, env.PYTHONHOME: ""}, racing: false, probe: false}',
        ),
    )
    run = box.run(box.tool(*box.tune_args(spec)), timeout=300)
    settled = settle(box, run, name)
    trials = _trials(box, name)
    common = [] if run.code == 0 else [f"exit {run.code} (expected 0: the baseline is feasible)"]
    if "Traceback" in run.output:
        common.append("a traceback was printed")
    if len(trials) != 6:
        common.append(f"{len(trials)} trials recorded, expected 6")
    rows = []
    for fault, (values, (outcome, reason)) in ENGINE_FAULTS.items():
        problems = list(common) + _detail(settled)
        match = [t for t in trials if all(t.config.get(k) == v for k, v in values.items())]
        if not match:
            rows.append(row(fault, "no trial recorded", settled, [*problems, "no trial"], started))
            continue
        trial = match[0]
        got_outcome, got_reason, kind = trial.outcome, trial.reason, trial.failure_kind
        if outcome == "not feasible":
            if got_outcome == "feasible" or not got_reason:
                problems.append(f"recorded {got_outcome!r} without a reason")
        elif got_outcome != outcome or (reason and reason not in f"{kind} {got_reason}"):
            problems.append(f"expected {outcome}/{reason}, recorded {got_outcome}/{kind}: {got_reason[:80]}")
        text = f"exit {run.code}; trial {trial.number} {got_outcome}: {got_reason[:70]}"
        also = "test_tune.py::test_failures_are_data" if fault == "engine OOM at start" else ""
        rows.append(row(fault, text, settled, problems, started, also))
    return rows


# ----------------------------------------------------------------------------------------------- port taken
PORT_TAKEN = """
import socket
import autotuner.launch.process as process

held = socket.socket()
held.bind(("127.0.0.1", 0))
held.listen()  # another process took the port the launcher chose, before the engine bound it
choose, calls = process.free_port, []

def taken(host="127.0.0.1"):
    calls.append(host)
    return held.getsockname()[1] if len(calls) == 1 else choose(host)

process.free_port = taken
"""


def port_taken(root: Path) -> list[Row]:
    """The free port the launcher picked is taken before the engine binds it: launched again on another port."""
    started = time.monotonic()
    box = Sandbox(root)
    name = "rel-port-taken"
    spec = box.write_spec(name, spec_text(name, parameters="{max-num-seqs: [1]}"))
    run = box.run(box.tool(*box.tune_args(spec), bootstrap=PORT_TAKEN), timeout=180)
    settled = settle(box, run, name)
    trials = _trials(box, name)
    problems = [] if run.code == 0 else [f"exit {run.code}"]
    if "launching again" not in run.output:
        problems.append("no second launch")
    outcome = trials[0].outcome if trials else "no trial"
    if outcome != "feasible":
        problems.append(f"trial {outcome}")
    text = f"exit {run.code}; launched again on a free port; trial 0 {outcome}"
    return [row("port taken before the engine binds it", text, settled, problems + _detail(settled), started)]


# ----------------------------------------------------------------------------------------------- genai-bench
def genai_bench_dies(root: Path, sig: signal.Signals, *, starting: bool = False) -> list[Row]:
    """The genai-bench worker is signalled mid-level: that level fails with the reason (its partial files kept),
    and the next trial gets a fresh worker. Killed while it still imports genai-bench, it is replaced by plain
    ``genai-bench benchmark`` runs (slower, never wrong) and every trial is measured."""
    started = time.monotonic()
    box = Sandbox(root)
    name = f"rel-genai-bench-{sig.name.lower()}{'-starting' if starting else ''}"
    workload = '{scenarios: ["D(32,16)"], concurrency: [2], max_requests: 24, max_time: 1m, warmup_requests: 0}'
    spec = box.write_spec(name, spec_text(name, args=SLOW_LEVEL, workload=workload))
    tool = box.start(box.tool(*box.tune_args(spec)))
    problems: list[str] = []
    if tool.wait_for("level 1 of 1" if starting else "worker ready", 120):
        time.sleep(0.2 if starting else 1.5)  # imports under way / requests in flight
        workers = child_processes(tool.pid, lambda cmd: "genai_bench_worker" in cmd)
        for worker in workers:
            worker.send_signal(sig)
        if not workers:
            problems.append("no genai-bench worker found")
    else:
        problems.append("the genai-bench worker never started")
    run = tool.finish(300)
    settled = settle(box, run, name)
    trials = _trials(box, name)
    if run.code != 0:
        problems.append(f"exit {run.code}")
    first = trials[0] if trials else None
    if starting:
        if "running plain `genai-bench benchmark`" not in run.output:
            problems.append("no fallback to plain genai-bench")
        if [t.outcome for t in trials] != ["feasible", "feasible"]:
            problems.append(f"outcomes {[t.outcome for t in trials]}, expected both measured")
    else:
        if first is None or first.outcome == "feasible" or "genai-bench" not in first.reason:
            problems.append("the interrupted trial is not recorded as failed by genai-bench")
        if len(trials) != 2 or trials[-1].outcome != "feasible":
            problems.append("the next trial did not run with a new worker")
        if not list((box.reports / name).rglob("01_*/console.log")):
            problems.append("the interrupted level's files were not kept")
    reason = first.reason[:70] if first is not None else "-"
    if starting:
        what = "killed while starting"
    else:
        what = "killed (SIGKILL) mid-level" if sig == signal.SIGKILL else "exits non-zero (SIGTERM) mid-level"
    text = f"exit {run.code}; trial 0 {first.outcome if first else '-'}: {reason}; trial 1 measured"
    return [row(f"genai-bench worker {what}", text, settled, problems + _detail(settled), started)]


def genai_bench_killed(root: Path) -> list[Row]:
    return genai_bench_dies(root, signal.SIGKILL)


def genai_bench_fails(root: Path) -> list[Row]:
    return genai_bench_dies(root, signal.SIGTERM)


def genai_bench_killed_starting(root: Path) -> list[Row]:
    return genai_bench_dies(root, signal.SIGKILL, starting=True)


# ----------------------------------------------------------------------------------------------- tuner signals
# finishing: right after the last trial (best chosen, results.json and the report being written); exiting: right
# after the summary is printed (the interpreter shutting down: CPython's default SIGINT action is back by then).
STAGES = ("start-up", "engine starting", "benchmarking", "between trials", "finishing", "exiting")
COVERED = {
    ("benchmarking", "SIGTERM"): "test_tune.py::test_interrupting_tune_mid_benchmark...",
    ("benchmarking", "SIGINT"): "test_tune.py::test_interrupting_tune_mid_benchmark...",
    ("benchmarking", "SIGKILL"): "test_storage.py::test_resume_after_sigkill_of_the_tuner",
}
FINISHED_FIRST = re.compile(r"^trial 0: \w+", re.M)
FINISHED_LAST = re.compile(r"^trial 1: \w+", re.M)
TRIAL_1_BENCH = re.compile(r"^trial 1 \(.*level 1 of 1", re.M | re.S)  # the second trial's benchmark runs
SUMMARY = re.compile(r"^rel-[\w-]+: \d+ trials", re.M)  # the first line of the summary, printed last
REPORT_FILES = ("report.md", "report.html")


def report_state(run_dir: Path | None) -> str:
    """``complete`` (Markdown, HTML and their charts), ``absent`` (none of it) or what a half-written one has."""
    if run_dir is None or not run_dir.is_dir():
        return "absent"
    present = [name for name in (*REPORT_FILES, "headline.mmd") if (run_dir / name).exists()]
    charts = sorted(p.name for p in (run_dir / "charts").glob("*")) if (run_dir / "charts").is_dir() else []
    if not present and not charts:
        return "absent"
    if all(name in present for name in REPORT_FILES) and charts:
        links = re.findall(r"\]\((charts/[^)]+)\)", (run_dir / "report.md").read_text(errors="replace"))
        missing = [link for link in links if not (run_dir / link).exists()]
        return f"partial: {missing} missing" if missing else "complete"
    return f"partial: {present + charts}"


def temporary_files(folder: Path) -> list[str]:
    """Files an atomic write left behind (``.<name>.<random>.tmp``): there must be none."""
    return sorted(p.name for p in folder.rglob(".*.tmp")) if folder.is_dir() else []


def _reach(box: Sandbox, tool_wait: Callable[[str | re.Pattern[str], float], bool], stage: str) -> bool:
    """Block until the run is in ``stage``; False if it never got there."""
    if stage == "start-up":
        time.sleep(0.4)  # Python and the tool's imports
        return True
    if stage == "engine starting":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if box.records():
                time.sleep(0.3)
                return True
            time.sleep(0.05)
        return False
    if stage == "benchmarking":
        ok = tool_wait("level 1 of 1", 120)
        time.sleep(1.0)
        return ok
    if stage == "between trials":
        return tool_wait(FINISHED_FIRST, 120)
    if stage == "exiting":
        return tool_wait(SUMMARY, 180)
    return tool_wait(FINISHED_LAST, 180)  # finishing: best chosen, results and report written


def tuner_signal(root: Path, stage: str, sig: signal.Signals) -> list[Row]:
    """SIGINT/SIGTERM: the tool stops its engine and genai-bench worker, keeps what it measured, exits 130.
    SIGKILL: it cannot clean up; the engine it leaves is stopped by ``autotuner reap`` (what the next run does
    first) and the genai-bench worker dies with it (PR_SET_PDEATHSIG); results.json holds every finished trial."""
    started = time.monotonic()
    box = Sandbox(root)
    name = f"rel-signal-{stage.replace(' ', '-').replace('_', '-')}-{sig.name.lower()}"
    args = SLOW_LEVEL + (", startup-delay: 60" if stage == "engine starting" else "")
    workload = '{scenarios: ["D(32,16)"], concurrency: [2], max_requests: 8, max_time: 1m, warmup_requests: 0}'
    spec = box.write_spec(name, spec_text(name, args=args, workload=workload))
    tool = box.start(box.tool(*box.tune_args(spec)))
    problems: list[str] = []
    reached = _reach(box, tool.wait_for, stage)
    if not reached:
        problems.append(f"never reached {stage}")
    tool.signal(sig)
    run = tool.finish(120)
    reaped = ""
    if sig == signal.SIGKILL:
        reap = box.reap()
        count = reap.output.count("stopped ")
        reaped = f"; reap stopped {count}"
        if stage == "engine starting" and count == 0:
            problems.append("reap found nothing to stop")
    elif stage != "start-up" and run.code not in (130, 0):
        problems.append(f"exit {run.code}, expected 130")
    notes = []
    if sig != signal.SIGKILL and "Traceback" in run.output:
        if stage == "start-up":  # Python's own KeyboardInterrupt while importing, before main() can catch it
            notes.append("a traceback is printed when interrupted while importing (__main__.py/cli.py)")
        else:
            problems.append("a traceback was printed")
    report = ""
    if sig != signal.SIGKILL and stage in ("finishing", "exiting"):
        problems += _finish_problems(box, name, run)
        report = f"; report {report_state(_run_dir(box, name)).split(':')[0]}"
    settled = settle(box, run, name)
    also = COVERED.get((stage, sig.name), "")
    text = f"exit {run.code}{reaped}; kept {len(settled.kept or ())} trial(s){report}"
    done = row(f"tuner {sig.name} while {stage}", text, settled, problems + _detail(settled), started, also)
    done.notes = notes
    return [done]


def _run_dir(box: Sandbox, spec_name: str) -> Path | None:
    latest = box.reports / spec_name / "latest"
    return latest.resolve() if latest.exists() else None


def _finish_problems(box: Sandbox, spec_name: str, run: Finished) -> list[str]:
    """Interrupted while finishing or exiting: exit 130 with the "how to resume" message (or 0 when the run had
    finished), the report complete or absent (never half-written), no temporary file left."""
    problems = []
    state = report_state(_run_dir(box, spec_name))
    if run.code == 130:
        if "interrupted: what was measured is in" not in run.output or "resum" not in run.output:
            problems.append("exit 130 without the message saying where the results are and how to resume")
        if state.startswith("partial"):
            problems.append(f"the report is half-written ({state})")
    elif run.code == 0 and state != "complete":
        problems.append(f"exit 0 but the report is {state}")
    junk = temporary_files(box.reports / spec_name)
    if junk:
        problems.append(f"temporary files left: {junk}")
    return problems


SLOW_TELL = """
import time
import autotuner.study as study

_tell = study.Study._tell

def slow_tell(self, trial, record):
    time.sleep(1.0)  # a storage round trip under load (PostgreSQL across a network): the window, made visible
    return _tell(self, trial, record)

study.Study._tell = slow_tell
"""


def signal_while_storing(root: Path) -> list[Row]:
    """SIGTERM right after the tool printed ``trial 0: feasible``, while it stores that result (the storage is
    slowed down by a bootstrap so the signal lands there every time). The trial was announced as finished: it
    must be in results.json."""
    started = time.monotonic()
    box = Sandbox(root)
    name = "rel-signal-while-storing"
    spec = box.write_spec(name, spec_text(name))
    tool = box.start(box.tool(*box.tune_args(spec), bootstrap=SLOW_TELL))
    problems: list[str] = []
    if not tool.wait_for(FINISHED_FIRST, 120):
        problems.append("trial 0 never finished")
    time.sleep(0.3)
    tool.signal(signal.SIGTERM)
    run = tool.finish(120)
    settled = settle(box, run, name)
    if run.code != 130:
        problems.append(f"exit {run.code}, expected 130")
    text = f"exit {run.code}; kept {len(settled.kept or ())} trial(s) of {len(finished_trials(run.output))} finished"
    return [row("tuner SIGTERM while storing a finished trial", text, settled, problems + _detail(settled), started)]


def signal_scenario(stage: str, sig: signal.Signals) -> Callable[[Path], list[Row]]:
    return lambda root: tuner_signal(root, stage, sig)


# ----------------------------------------------------------------------------------------------- PostgreSQL
def _pg_ctl() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts)
    return found[-1] if found else None


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def postgres_restarted(root: Path) -> list[Row]:
    """A private cluster (``.ci/postgres.sh`` on its own data dir and port) is restarted with ``pg_ctl restart``
    while a trial runs: heartbeats and the trial's ``tell`` reconnect; every config is measured exactly once."""
    started = time.monotonic()
    fault = "PostgreSQL restarted mid-study"
    pg_ctl = _pg_ctl()
    if pg_ctl is None or shutil.which("runuser") is None:
        return [Row(fault, "skipped: no PostgreSQL server binaries (.ci/postgres.sh installs them)", 0, 0)]
    tag = uuid.uuid4().hex[:8]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = {
        "AUTOTUNER_POSTGRES_DIR": f"{tempfile.gettempdir()}/autotuner-reliability-pg-{tag}",
        "AUTOTUNER_POSTGRES_PORT": str(port),
        "AUTOTUNER_POSTGRES_URLFILE": f"{tempfile.gettempdir()}/autotuner-reliability-pg-{tag}.url",
    }
    script = str(REPO / ".ci" / "postgres.sh")
    env = {**os.environ, **settings}
    begun = subprocess.run(["bash", script, "start"], capture_output=True, text=True, env=env, timeout=300)
    if begun.returncode != 0:
        return [Row(fault, f"skipped: .ci/postgres.sh start failed: {begun.stderr.strip()[-120:]}", 0, 0)]
    url = begun.stdout.strip().splitlines()[-1]
    try:
        return _postgres_restarted(root, url, pg_ctl, settings["AUTOTUNER_POSTGRES_DIR"], started)
    finally:
        subprocess.run(["bash", script, "stop"], capture_output=True, text=True, env=env, timeout=120)


def _postgres_restarted(root: Path, url: str, pg_ctl: Path, datadir: str, started: float) -> list[Row]:
    import optuna

    from autotuner.study import RECORD_ATTR

    box = Sandbox(root)
    name = "rel-postgres-restart"
    workload = '{scenarios: ["D(32,16)"], concurrency: [2], max_requests: 12, max_time: 1m, warmup_requests: 0}'
    spec = box.write_spec(
        name, spec_text(name, args=SLOW_LEVEL, parameters="{max-num-seqs: [1, 2, 4]}", workload=workload)
    )
    tool = box.start(box.tool(*box.tune_args(spec, "--storage", url, "--heartbeat", "2")))
    problems: list[str] = []
    if tool.wait_for(TRIAL_1_BENCH, 180):
        time.sleep(0.5)
        # -l: the restarted postmaster writes to its log, not to pipes we would wait on forever
        log = Path(datadir) / "server.log"
        restart = subprocess.run(
            _as_postgres([str(pg_ctl), "-D", datadir, "-l", str(log), "-m", "fast", "-w", "-t", "60", "restart"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        if restart.returncode != 0:
            problems.append(f"pg_ctl restart failed (exit {restart.returncode}); see {log}")
        elif "ready to accept connections" not in log.read_text(errors="replace"):
            problems.append("the server log shows no restart")
    else:
        problems.append("trial 1 never started")
    run = tool.finish(300)
    counts: dict[str, int] = {}
    stored: set[int] = set()
    try:
        for summary in optuna.get_all_study_summaries(url):
            study = optuna.load_study(study_name=summary.study_name, storage=url)
            for trial in study.get_trials(deepcopy=False):
                record = trial.user_attrs.get(RECORD_ATTR)
                if isinstance(record, dict):
                    counts[str(record["config_hash"])] = counts.get(str(record["config_hash"]), 0) + 1
                    stored.add(int(record["number"]))
    except Exception as exc:  # noqa: BLE001 - the storage itself is what is being checked
        problems.append(f"storage unreadable: {exc}")
    settled = settle(box, run, name, stored=stored)
    if run.code != 0:
        problems.append(f"exit {run.code}: {run.output.strip().splitlines()[-1][:100] if run.output.strip() else ''}")
    if sorted(counts.values()) != [1, 1, 1]:
        problems.append(f"measurements per config {sorted(counts.values())}, expected [1, 1, 1]")
    text = f"exit {run.code}; {len(counts)} configs measured once each in the storage"
    return [row("PostgreSQL restarted mid-study", text, settled, problems + _detail(settled), started)]


# ----------------------------------------------------------------------------------------------- disk full
def disk_full(root: Path) -> list[Row]:
    """The report dir is a 16 MiB tmpfs, filled up after the first trial: the tool must stop with exit 5 and a
    message naming the path and "no space left on device", results.json must stay valid (it is replaced
    atomically), no temporary file is left, the storage keeps every trial, nothing runs on."""
    started = time.monotonic()
    fault = "disk full in the report dir"
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return [Row(fault, "skipped: mounting a tmpfs needs root", 0, 0)]
    box = Sandbox(root)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(box.reports)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        return [Row(fault, f"skipped: mount failed: {mounted.stderr.strip()[:100]}", 0, 0)]
    try:
        return _disk_full(box, started)
    finally:
        box.kill_leftovers()
        if subprocess.run(["umount", str(box.reports)], capture_output=True).returncode != 0:
            time.sleep(2)
            subprocess.run(["umount", "-l", str(box.reports)], capture_output=True)


def _disk_full(box: Sandbox, started: float) -> list[Row]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from autotuner.study import RECORD_ATTR

    name = "rel-disk-full"
    journal = box.root / "study.journal"
    workload = '{scenarios: ["D(32,16)"], concurrency: [2], max_requests: 8, max_time: 1m, warmup_requests: 0}'
    spec = box.write_spec(
        name, spec_text(name, args=SLOW_LEVEL, parameters="{max-num-seqs: [1, 2, 4]}", workload=workload)
    )
    tool = box.start(box.tool(*box.tune_args(spec, "--storage", f"journal:{journal}")))
    problems: list[str] = []
    results = box.results(name)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not kept_trials(results) and tool.process.poll() is None:
        time.sleep(0.05)  # until results.json holds the first trial: then the disk fills up
    if kept_trials(results):
        filler = box.reports / "filler"
        with open(filler, "wb") as out:
            try:
                while True:
                    out.write(b"\0" * (1 << 20))
                    out.flush()
            except OSError:
                pass  # ENOSPC: the report dir is full now
    else:
        problems.append("the first trial was never written")
    run = tool.finish(300)
    stored: set[int] = set()
    if journal.exists():
        storage = JournalStorage(JournalFileBackend(str(journal)))
        for summary in optuna.get_all_study_summaries(storage):
            for trial in optuna.load_study(study_name=summary.study_name, storage=storage).get_trials():
                record = trial.user_attrs.get(RECORD_ATTR)
                if isinstance(record, dict):
                    stored.add(int(record["number"]))
    try:
        count = len(StudyResult.read(results).trials)
    except (OSError, ValueError) as exc:
        count = -1
        problems.append(f"results.json unreadable: {exc}")
    settled = settle(box, run, name, stored=stored)
    last = run.output.strip().splitlines()[-1] if run.output.strip() else ""
    if run.code != 5:
        problems.append(f"exit {run.code}, expected 5 (an infrastructure problem)")
    message = next((line for line in run.output.splitlines() if "no space left on device" in line.lower()), "")
    if not message:
        problems.append("the message does not say the disk is full")
    elif str(box.reports) not in message:
        problems.append("the message does not name the full path")
    if "Traceback" in run.output:
        problems.append("a traceback was printed")
    if "internal error" in run.output:
        problems.append("reported as an internal error")
    junk = temporary_files(box.reports)
    if junk:
        problems.append(f"temporary files left: {junk}")
    text = f"exit {run.code}: {last[:90]}; results.json valid ({count} trials)"
    return [row("disk full in the report dir", text, settled, problems + _detail(settled), started)]


# ----------------------------------------------------------------------------------------------- registry
SCENARIOS: dict[str, tuple[Callable[[Path], list[Row]], bool]] = {
    # name: (scenario, in --quick, i.e. run by tests/reliability/test_faults.py)
    "engine-faults": (engine_faults, True),
    "port-taken": (port_taken, True),
    "genai-bench-killed": (genai_bench_killed, True),
    "genai-bench-fails": (genai_bench_fails, False),
    "genai-bench-killed-starting": (genai_bench_killed_starting, False),
    "postgres-restart": (postgres_restarted, True),
    "disk-full": (disk_full, True),
}
for _stage in STAGES:
    for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        _quick = (_stage, _sig.name) in (
            ("engine starting", "SIGTERM"),
            ("engine starting", "SIGKILL"),
            ("between trials", "SIGINT"),
            ("finishing", "SIGINT"),
            ("finishing", "SIGTERM"),
            ("exiting", "SIGINT"),
        )
        SCENARIOS[f"signal-{_stage.replace(' ', '-')}-{_sig.name.lower()}"] = (signal_scenario(_stage, _sig), _quick)


def docker_rows(root: Path) -> list[Row]:
    from docker_fault import docker_stopped

    return docker_stopped(root)


SCENARIOS["docker-stopped"] = (docker_rows, False)
SCENARIOS["signal-while-storing"] = (signal_while_storing, False)


def run_scenarios(names: list[str], root: Path) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        scenario, _quick = SCENARIOS[name]
        folder = root / name
        try:
            rows.extend(scenario(folder))
        except Exception as exc:  # noqa: BLE001 - a harness failure is a row that fails, not a lost table
            rows.append(Row(name, f"harness error: {type(exc).__name__}: {exc}", 0, 0, ["harness error"]))
        finally:
            Sandbox(folder).kill_leftovers()
    return rows


def table(rows: list[Row]) -> str:
    head = f"{'fault':<46} {'lost':>4} {'left':>4}  {'ok':<3} {'s':>5}  outcome"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.fault:<46} {r.lost:>4} {r.left:>4}  {'yes' if r.ok else 'NO':<3} {r.seconds:>5.1f}  {r.outcome}"
        )
        lines += [f"{'':<46} {'':>4} {'':>4}  {'':<3} {'':>5}  ! {p}" for p in r.problems]
        lines += [f"{'':<46} {'':>4} {'':>4}  {'':<3} {'':>5}  ~ known issue: {n}" for n in r.notes]
        if r.also:
            lines.append(f"{'':<46} {'':>4} {'':>4}  {'':<3} {'':>5}  also: {r.also}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help=f"scenario names (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="only the scenarios the test suite runs")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox folders (printed)")
    args = parser.parse_args(argv)
    names = args.scenarios or [n for n, (_s, quick) in SCENARIOS.items() if quick or not args.quick]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}")
    root = Path(tempfile.mkdtemp(prefix="autotuner-faults-"))
    try:
        rows = run_scenarios(names, root)
    finally:
        if args.keep:
            print(f"sandboxes kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    missed = [r for r in rows if not r.ok]
    print(f"\n{len(rows)} faults, {len(rows) - len(missed)} met the targets (trials lost 0, left 0, as expected)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
