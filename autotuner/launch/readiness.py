"""Wait until an engine serves, or say at once why it never will.

Polls the profile's health endpoint; between polls checks whether the engine already exited (a crash at start
is reported in about a second, not after the whole startup timeout) and classifies the failure from its log.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from ..engines.profile import EngineProfile, FailureKind
from .base import Deployment, LaunchFailed

Progress = Callable[[float, str], None]


def probe(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of GET ``url``, or None when nothing answers (connection refused, reset, timeout)."""
    # A proxy in the environment must not carry health checks of an engine on this machine (it cannot reach it).
    loopback = urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({} if loopback else None))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException, OSError):
        return None


def wait_until_ready(
    deployment: Deployment,
    profile: EngineProfile,
    timeout: float,
    *,
    poll: float = 0.5,
    progress: Progress | None = None,
) -> float:
    """Block until the engine answers 200 on its health endpoint; return how long it took.

    Raises ``LaunchFailed`` with the failure kind, the reason and the log tail when the engine exits first or
    the timeout passes. Progress is reported about every 10 s (long startups: compiling, CUDA graphs).
    """
    started = time.monotonic()
    health = deployment.url.rstrip("/") + profile.endpoints.health
    last_report = started
    while True:
        code = deployment.exit_code()
        if code is not None:
            raise failure_from_exit(deployment, profile, code)
        if probe(health) == 200 and deployment.serving():
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            tail = deployment.log_tail()
            kind = profile.classify(tail)
            # A log that already shows e.g. an OOM explains the hang better than "timeout".
            reason = kind if kind in (FailureKind.OOM, FailureKind.MODEL_NOT_FOUND) else FailureKind.TIMEOUT
            raise LaunchFailed(reason, f"not ready after {timeout:.0f}s ({deployment.description})", tail)
        if progress is not None and time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            progress(elapsed, f"waiting for {deployment.description} to become ready ({elapsed:.0f}s)")
        time.sleep(poll)


def failure_from_exit(deployment: Deployment, profile: EngineProfile, code: int) -> LaunchFailed:
    tail = deployment.log_tail()
    kind = profile.classify(deployment.read_log()) or FailureKind.CRASH
    return LaunchFailed(
        kind, f"engine exited with code {code} before it was ready ({deployment.description})", tail, code
    )
