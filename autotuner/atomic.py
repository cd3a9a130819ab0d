"""Files written whole or not at all: ``results.json`` and the report survive a full disk and an interrupt.

A tuning run writes its results after every trial and its report at the end. Two things can stop a write half
way: the disk filling up (``ENOSPC``) and the user (Ctrl-C, a CI runner's SIGTERM). Either must leave the last
complete file in place, or no file, and never a half-written one or a stray temporary file beside it. So each
file is written to a temporary name in its own folder (a rename within one file system is atomic) and renamed
over the target; a failure removes the temporary file and re-raises with the target's path, because a write
error on an open file (``OSError: [Errno 28] No space left on device``) names no file and the person reading it
needs to know which disk filled up.

A group of files (the report: Markdown, HTML, charts) is staged the same way and renamed together at the end,
with SIGINT/SIGTERM/SIGHUP held back during the renames (they take microseconds), so a reader finds the whole
report or none of it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left on device; disk quota exceeded
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def is_disk_full(exc: BaseException) -> bool:
    """True for the errors of a full disk (or an exhausted quota): an infrastructure problem, not a bug."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def _located(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name when it has none (write errors on an open handle carry none)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


@contextmanager
def _temporary(path: Path, mode: str) -> Iterator[tuple[Path, IO[Any]]]:
    """A new temporary file beside ``path``, open for writing (``mode`` ``w``: UTF-8 text, ``wb``: bytes); on any
    failure in the block, closing included (where a full disk shows), it is gone again."""
    # Signals wait while the file is made and its name kept: an interrupt landing between the two left a stray
    # temporary file (the fault suite's "SIGTERM while finishing" hit it once). Delivered at the end of the
    # ``with``, it is already inside the ``try`` that removes the file.
    temporary: Path | None = None
    fd = -1
    try:
        with held_signals():
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temporary = Path(name)
        with os.fdopen(fd, mode, encoding="utf-8" if "b" not in mode else None) as handle:
            fd = -1  # the handle owns it now
            yield temporary, handle
    except OSError as exc:  # a full disk: no stray temporary file, and the error names the file
        _remove(temporary, fd)
        located = _located(exc, path)
        if located is exc:
            raise
        raise located from exc
    except BaseException:  # an interrupt: no stray temporary file either
        _remove(temporary, fd)
        raise


def _remove(temporary: Path | None, fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
    if temporary is not None:
        temporary.unlink(missing_ok=True)


@contextmanager
def replacing(path: Path) -> Iterator[IO[str]]:
    """Write ``path`` atomically through a text handle (UTF-8), streamed: a reader sees the old file or the new
    one, never half of one; a failure in the block leaves the old file and no temporary one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary(path, "w") as (temporary, handle):
        yield handle
        handle.flush()  # a full disk shows here, before the rename, not when the handle closes after it
        os.replace(temporary, path)  # inside the block: an interrupt right after the write still removes the file


def replace_file(path: Path, content: str) -> None:
    """Write ``path`` atomically (see ``replacing``)."""
    with replacing(path) as handle:
        handle.write(content)


class Staging:
    """Files to be written together: each staged to a temporary name, all renamed into place by ``commit``."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)
        self._made: list[Path] = []  # folders made for staged files: removed again (if empty) when discarded
        self._committed = False

    def write(self, path: Path, content: str | bytes) -> None:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
            self._made.append(path.parent)
        with _temporary(path, "wb") as (temporary, handle):
            handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            handle.flush()
            self._staged.append((temporary, path))  # inside the block: a staged file is always discarded or committed

    def commit(self) -> None:
        with held_signals():
            while self._staged:
                temporary, target = self._staged[0]
                os.replace(temporary, target)
                self._staged.pop(0)
            self._committed = True

    def discard(self) -> None:
        """Remove what was staged and not committed (nothing after a commit)."""
        for temporary, _target in self._staged:
            temporary.unlink(missing_ok=True)
        self._staged.clear()
        for folder in reversed([] if self._committed else self._made):
            with contextlib.suppress(OSError):  # not empty (another writer's files): it stays
                folder.rmdir()
        self._made.clear()


@contextmanager
def staged() -> Iterator[Staging]:
    """Stage files in the block; they are renamed into place when it ends normally, removed when it does not."""
    staging = Staging()
    try:
        yield staging
        staging.commit()
    finally:
        staging.discard()


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back for a moment that must not be cut in two; deliver them after it.

    Python handlers, not a signal mask: in a process with threads the kernel hands a blocked signal to another
    thread, and Python would still run the handler in the main thread at once. Outside the main thread (where
    handlers cannot be set) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous: dict[int, Callable[[int, FrameType | None], Any] | int | signal.Handlers | None] = {}
    for held in HELD_SIGNALS:
        previous[held] = signal.signal(held, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(received):
            _deliver(signum, previous.get(signum))


def _deliver(signum: int, handler: Callable[[int, FrameType | None], Any] | int | signal.Handlers | None) -> None:
    """What the held signal would have done: the previous handler runs (raising KeyboardInterrupt, Terminated,
    ...), or the default action is taken."""
    if callable(handler):
        handler(signum, None)
    elif handler != signal.SIG_IGN:
        os.kill(os.getpid(), signum)
