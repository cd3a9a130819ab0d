"""Turn SIGTERM (and SIGHUP) into an exception, so every ``with deployment:`` block stops its engine.

Python's default SIGTERM ends the process at once, skipping ``finally`` blocks: a CI runner cancelling a job
would leave a GPU occupied. Inside ``graceful_termination()`` SIGTERM raises ``Terminated`` (a
``KeyboardInterrupt``, so code that already handles Ctrl-C handles it too) and cleanup runs as for SIGINT.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The tool was asked to stop (SIGTERM/SIGHUP)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"received {signal.Signals(signum).name}")


@contextmanager
def graceful_termination() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
