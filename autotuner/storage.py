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

JOURNAL_SUFFIXES = (".journal", ".log")
MAX_RETRY = 3  # a config whose worker died this many times is not retried again (it may be what kills workers)


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat + 1,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            )
        except ImportError as exc:
            raise StorageError(f"--storage {url!r}: no database driver for it ({exc})") from exc


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
