"""Study storage with real parts: SQLite and journal files, SIGKILL then ``--resume``, workers sharing PostgreSQL.

Every run is a real ``autotuner tune`` process with the ``sim`` engine (fast, deterministic latencies) and real
genai-bench. PostgreSQL tests need ``AUTOTUNER_TEST_POSTGRES_URL`` (``.ci/run`` starts one with
``.ci/postgres.sh``); without it they skip, except on CI (``CI=true``), where a missing database is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import psutil
import pytest

from autotuner.results import StudyResult
from autotuner.study import RECORD_ATTR, WORKER_ATTR

pytestmark = pytest.mark.slow

SPEC = """\
name: NAME
model: {id: builtin:smollm2}
engine: {runtime: sim, args: {time-scale: SCALE, decode-step-ms: 20}, startup_timeout: 30s}
parameters:
  max-num-seqs: VALUES
workload: {scenarios: ["D(64,32)"], concurrency: [1, 4], max_requests: REQUESTS, max_time: 1m, warmup_requests: 1}
slo:
  ttft: {p90: 5s}
objective: {maximize: output_throughput}
search: {strategy: grid, seed: 3, baseline: {max-num-seqs: 1}, racing: false}  # the search alone: racing is tested in test_tune.py
"""


def write_spec(tmp_path: Path, name: str, values: str, *, scale: float = 0.2, requests: int = 8) -> Path:
    text = SPEC.replace("NAME", name).replace("VALUES", values).replace("SCALE", str(scale))
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text.replace("REQUESTS", str(requests)))
    return spec


def command(spec: Path, reports: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "autotuner", "tune", str(spec), "--report-dir", str(reports), *args]


def environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AUTOTUNER_STATE_DIR": str(tmp_path / "state")}


def tune(tmp_path: Path, spec: Path, *args: str, reports: str = "reports") -> tuple[int, str, StudyResult | None]:
    result = subprocess.run(
        command(spec, tmp_path / reports, *args), capture_output=True, text=True, env=environment(tmp_path), timeout=600
    )
    path = tmp_path / reports / spec.stem / "latest" / "results.json"
    return result.returncode, result.stdout + result.stderr, StudyResult.read(path) if path.exists() else None


def ours(tmp_path: Path) -> list[psutil.Process]:
    """Processes started for this test (engines, genai-bench workers): they carry our AUTOTUNER_STATE_DIR."""
    state = str(tmp_path / "state")
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and process.environ().get("AUTOTUNER_STATE_DIR") == state:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def engines_left(tmp_path: Path) -> list[psutil.Process]:
    found = []
    for process in ours(tmp_path):
        try:
            if "autotuner.engines" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def cleanup(tmp_path: Path) -> object:
    """After the test: stop, by PID, whatever this test's processes left (a SIGKILLed tuner's helpers)."""
    yield None
    for process in ours(tmp_path):
        try:
            process.kill()
        except psutil.Error:
            pass


def measured(storage: str, study_name: str) -> Counter[str]:
    """How many times each config was measured, read from the storage (records, whatever the trial state)."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    counts: Counter[str] = Counter()
    for trial in study.get_trials(deepcopy=False):
        record = trial.user_attrs.get(RECORD_ATTR)
        if isinstance(record, dict):
            counts[str(record["config_hash"])] += 1
    return counts


def wait_for(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------------ files


def test_journal_resume_keeps_what_was_measured(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "journal-resume", "[1, 2, 4]")
    storage = f"journal:{tmp_path / 'study.journal'}"
    code, output, first = tune(tmp_path, spec, "--storage", storage, "--max-trials", "2")
    assert code == 0, output
    assert first is not None and len(first.trials) == 2
    code, output, second = tune(tmp_path, spec, "--storage", storage, "--resume")
    assert code == 0, output
    assert second is not None
    assert [t.config["max-num-seqs"] for t in second.trials] == [1, 2, 4]
    assert [t.model_dump() for t in second.trials[:2]] == [t.model_dump() for t in first.trials]
    started = [line for line in output.splitlines() if line.startswith("trial ") and "max-num-seqs=" in line]
    assert len(started) == 1 and started[0].endswith("max-num-seqs=4"), output  # nothing measured twice


def test_an_existing_study_is_refused_without_resume(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "sqlite-refuse", "[1, 2]")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    code, output, _ = tune(tmp_path, spec, "--storage", storage, "--max-trials", "1")
    assert code == 0, output
    code, output, _ = tune(tmp_path, spec, "--storage", storage)
    assert code == 2, output
    assert "already has trials" in output and "--resume" in output


def test_resume_after_sigkill_of_the_tuner(tmp_path: Path, cleanup: object) -> None:
    """SIGKILL mid-trial: completed trials are kept and not re-measured; the interrupted config is measured."""
    spec = write_spec(tmp_path, "sigkill-resume", "[1, 2, 4, 8]", scale=0.4, requests=12)
    db = tmp_path / "study.db"
    storage = f"sqlite:///{db}"
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(
        command(spec, tmp_path / "reports", "--storage", storage),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment(tmp_path),
        start_new_session=True,
    )
    results = tmp_path / "reports" / spec.stem / "latest" / "results.json"
    try:
        wait_for(lambda: results.exists() and len(StudyResult.read(results).trials) >= 1, 300, "a completed trial")
        wait_for(lambda: "trial 1:" in (tmp_path / "first.log").read_text(), 60, "the second trial to start")
        time.sleep(1.0)  # inside the second trial's launch/bench
    finally:
        first.send_signal(signal.SIGKILL)  # the tuner only: its engine stays, as after a crash
        first.wait(30)
        log.close()
    before = StudyResult.read(results)
    done = {t.config_hash: t.model_dump() for t in before.trials}
    assert 1 <= len(done) < 4
    study_name = before.study_name
    running = [
        t for t in optuna.load_study(study_name=study_name, storage=storage).get_trials() if t.state.name == "RUNNING"
    ]
    assert len(running) == 1 and WORKER_ATTR in running[0].user_attrs

    code, output, after = tune(tmp_path, spec, "--storage", storage, "--resume")
    assert code == 0, output
    assert after is not None
    assert "stopped an engine left by an earlier run" in output  # reaped at the start of the next run
    assert "left running by an earlier run" in " ".join(after.notes)
    assert sorted(t.config["max-num-seqs"] for t in after.trials) == [1, 2, 4, 8]
    for trial in after.trials:
        if trial.config_hash in done:
            assert trial.model_dump() == done[trial.config_hash]  # kept, never re-measured
    assert set(measured(storage, study_name).values()) == {1}
    assert not engines_left(tmp_path)


# ------------------------------------------------------------------------------------------------ PostgreSQL


@pytest.fixture
def postgres() -> str:
    url = os.environ.get("AUTOTUNER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("AUTOTUNER_TEST_POSTGRES_URL is not set on CI: .ci/run starts PostgreSQL with .ci/postgres.sh")
        pytest.skip("AUTOTUNER_TEST_POSTGRES_URL not set (start one: .ci/postgres.sh start)")
    optuna.storages.RDBStorage(url).engine.dispose()  # tables created once, before workers race to create them
    return url


def test_two_workers_share_a_grid_study(tmp_path: Path, postgres: str) -> None:
    spec = write_spec(tmp_path, f"pg-share-{uuid.uuid4().hex[:6]}", "[1, 2, 3, 4, 5, 6]")
    args = ("--storage", postgres, "--resume", "--heartbeat", "2")
    workers = [
        subprocess.Popen(
            command(spec, tmp_path / f"reports-{i}", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment(tmp_path),
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    results = [StudyResult.read(tmp_path / f"reports-{i}" / spec.stem / "latest" / "results.json") for i in range(2)]
    counts = measured(postgres, results[0].study_name)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts  # every config measured exactly once
    for result in results:  # each worker's results.json holds the whole study
        assert sorted(t.config["max-num-seqs"] for t in result.trials) == [1, 2, 3, 4, 5, 6]
    started = [
        sum(1 for line in out.splitlines() if line.startswith("trial ") and "max-num-seqs=" in line) for out in outputs
    ]
    assert sum(started) == 6 and min(started) >= 1, outputs  # both worked
    assert not engines_left(tmp_path)


def test_a_dead_workers_trial_is_retried_by_another(tmp_path: Path, postgres: str, cleanup: object) -> None:
    spec = write_spec(tmp_path, f"pg-death-{uuid.uuid4().hex[:6]}", "[1, 2, 4]", scale=0.4, requests=12)
    args = ("--storage", postgres, "--resume", "--heartbeat", "2")
    victim = subprocess.Popen(
        command(spec, tmp_path / "reports-victim", *args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment(tmp_path),
        start_new_session=True,
    )
    study_name: list[str] = []

    def victim_runs_a_trial() -> bool:
        try:
            names = [
                s.study_name for s in optuna.get_all_study_summaries(postgres) if s.study_name.startswith(spec.stem)
            ]
            if not names:
                return False
            study = optuna.load_study(study_name=names[0], storage=postgres)
        except Exception:  # noqa: BLE001 - not created yet
            return False
        study_name[:] = names
        return any(
            t.state.name == "RUNNING" and f":{victim.pid}:" in str(t.user_attrs.get(WORKER_ATTR))
            for t in study.get_trials(deepcopy=False)
        )

    try:
        wait_for(victim_runs_a_trial, 120, "the first worker to start a trial")
        survivor = subprocess.Popen(
            command(spec, tmp_path / "reports-survivor", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment(tmp_path),
        )
        time.sleep(1.0)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    killed_at = time.monotonic()
    output = survivor.communicate(timeout=600)[0]
    assert survivor.returncode == 0, output
    result = StudyResult.read(tmp_path / "reports-survivor" / spec.stem / "latest" / "results.json")
    assert sorted(t.config["max-num-seqs"] for t in result.trials) == [1, 2, 4]
    counts = measured(postgres, study_name[0])
    assert len(counts) == 3 and set(counts.values()) == {1}, counts
    study = optuna.load_study(study_name=study_name[0], storage=postgres)
    failed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL" and RECORD_ATTR not in t.user_attrs]
    retried = [t for t in study.get_trials(deepcopy=False) if "failed_trial" in t.system_attrs]
    assert any(f":{victim.pid}:" in str(t.user_attrs.get(WORKER_ATTR)) for t in failed)  # failed by the heartbeat
    assert retried and all(t.state.name == "COMPLETE" and RECORD_ATTR in t.user_attrs for t in retried)
    assert time.monotonic() - killed_at >= 5  # not before the grace period (2 x 2 s + 1 s)
    reap = subprocess.run(
        [sys.executable, "-m", "autotuner", "reap", "--launcher", "process"],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=60,
    )
    assert "stopped" in reap.stdout  # the victim's engine, left running, reaped as the next run would
    assert not engines_left(tmp_path)
