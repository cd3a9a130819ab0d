"""Where a study lives: Optuna storage from one ``--storage`` string, worker identity and trial heartbeats.

- ``None``: in memory (one run, no resume).
- A SQLAlchemy URL (``sqlite:///study.db``, ``postgresql://user:pw@host/db``): Optuna's ``RDBStorage`` with
  heartbeats, so a trial whose worker died (SIGKILL, lost machine) is failed after the grace period and re-queued
  by ``RetryHeartbeatStaleTrialCallback`` for another worker. This is what several workers share.
- ``journal:PATH`` or a path ending in ``.journal`` / ``.log``: Optuna's ``JournalStorage`` on a file. Journal
  storage has no heartbeats, so a trial left running is only recognised as dead when its worker ran on this
  machine (its PID is gone); share a journal file between workers of one machine only.

Why our own heartbeat thread: Optuna records heartbeats inside ``study.optimize``; we drive trials with ask/tell
(the pipeline decides what a trial is), so we record them ourselves while a trial runs.

Optuna warns about exactly these choices (heartbeats are "experimental", and "supposed to be used with
Study.optimize"), once per run, on the user's terminal, where they read as something wrong with the study. They are
deliberate, so ``EXPECTED_WARNINGS`` silences those, and only those: each by category, message and the modules
that raise it (Optuna's own, or ours since Python 3.12 attributes Optuna's warnings to the caller). Any other
warning still shows.
"""

from __future__ import annotations

import os
import socket
import threading
import warnings
from pathlib import Path
from types import TracebackType

import optuna
import psutil
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from .secrets import Masker

JOURNAL_SUFFIXES = (".journal", ".log")
MAX_RETRY = 3  # a config whose worker died this many times is not retried again (it may be what kills workers)

# (category, message regex, module regex) of the warnings our deliberate use of heartbeats with ask/tell raises.
_OPTUNA_OR_OURS = r"(optuna|autotuner)\."
EXPECTED_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (optuna.exceptions.ExperimentalWarning, r"Argument ``heartbeat_interval`` is an experimental", _OPTUNA_OR_OURS),
    (optuna.exceptions.ExperimentalWarning, r"RetryHeartbeatStaleTrialCallback is experimental", _OPTUNA_OR_OURS),
    (optuna.exceptions.ExperimentalWarning, r"\S*fail_stale_trials is experimental", _OPTUNA_OR_OURS),
    (UserWarning, r"Heartbeat of storage is supposed to be used with Study\.optimize", _OPTUNA_OR_OURS),
)


def silence_expected_warnings() -> None:
    """Install the filters for ``EXPECTED_WARNINGS`` (idempotent: ``warnings`` drops a duplicate filter)."""
    for category, message, module in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


silence_expected_warnings()


class StorageError(ValueError):
    """A ``--storage`` value we cannot open; the message says what is accepted."""


def open_storage(url: str | None, *, heartbeat: int = 30) -> BaseStorage | None:
    """The Optuna storage for ``url`` (None: in memory). ``heartbeat`` is the interval in seconds (RDB only)."""
    if url is None or url == "":
        return None
    if url.startswith("journal:") or url.endswith(JOURNAL_SUFFIXES):
        path = Path(url.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise StorageError(
            f"--storage {url!r}: expected a SQLAlchemy URL (sqlite:///study.db, postgresql://user:pw@host/db) or a "
            "journal file (journal:PATH, or a path ending in .journal or .log)"
        )
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, object] = {}
    if url.startswith("postgresql"):
        engine_kwargs = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4}  # heartbeat thread + main thread
    try:
        with warnings.catch_warnings():  # the filters again: a caller (pytest, around each test) may have reset them
            silence_expected_warnings()
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat + 1,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            )
    except ImportError as exc:
        shown = Masker.from_environ().mask(url)  # a database URL may carry its password
        raise StorageError(f"--storage {shown!r}: no database driver for it ({exc})") from exc


def has_heartbeat(storage: BaseStorage | None) -> bool:
    return isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None


def worker_id() -> str:
    """host:pid:start-time, so that a reused PID is never taken for the worker that died."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.0f}"


def worker_is_dead_here(worker: str) -> bool:
    """True only when ``worker`` ran on this machine and that process is gone (unknown elsewhere: False)."""
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        process = psutil.Process(int(parts[1]))
        return f"{process.create_time():.0f}" != parts[2]
    except psutil.NoSuchProcess:
        return True


class Heartbeat:
    """Records a trial's heartbeat every interval while the trial runs (a no-op for storages without them)."""

    def __init__(self, storage: BaseStorage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        storage = getattr(self.storage, "_backend", self.storage)  # a study wraps its RDB storage in a cache
        if isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None:
            interval = float(storage.heartbeat_interval)
            storage.record_heartbeat(self.trial_id)

            def beat() -> None:
                while not self.stop.wait(interval):
                    try:
                        storage.record_heartbeat(self.trial_id)
                    except Exception:  # noqa: BLE001 - a missed beat: the next one may succeed; grace covers it
                        pass

            self.thread = threading.Thread(target=beat, name=f"heartbeat-{self.trial_id}", daemon=True)
            self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
