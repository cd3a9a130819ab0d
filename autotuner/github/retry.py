"""Retrying GitHub's transient errors, and saying plainly what a permanent one means.

Transport-level retries are PyGithub's own ``GithubRetry`` (a ``urllib3.Retry``): it retries 5xx answers with
exponential backoff and a 403 that is a secondary rate limit, sleeping ``Retry-After`` when GitHub sends it. We
only choose its numbers (``github_retry``). What it cannot retry is a write that lost a race: two runs pushing
charts to the assets branch at once get a 409 (the branch moved) or a 422 (the file appeared meanwhile) from the
contents API; ``retry_call`` repeats such an operation a few times after re-reading the state it depends on.

``explain`` turns a ``GithubException`` into one line a person can act on: a 403/404 on a write names the
workflow permission that is missing (``pull-requests: write`` for comments, ``contents: write`` for the assets
branch). Every message passes through the ``Masker``, so a token echoed back in an error never reaches a log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from github import GithubException, GithubRetry

from ..secrets import Masker

T = TypeVar("T")

# GitHub asks integrations to wait at least a minute after a secondary rate limit without Retry-After.
SECONDARY_RATE_WAIT = 60.0
RACE_STATUSES = frozenset({409, 422})

PERMISSIONS = {
    "comment": "pull-requests: write",
    "assets": "contents: write",
    "read": "contents: read",
}


def github_retry(
    total: int = 5, backoff_factor: float = 1.0, secondary_rate_wait: float = SECONDARY_RATE_WAIT
) -> GithubRetry:
    """PyGithub's retry policy with our numbers: 5 attempts, 1 s, 2 s, 4 s ... between them (capped by urllib3 at
    120 s), ``Retry-After`` honoured, and never more than 5 minutes waiting on a rate limit (a CI job has a budget)."""
    return GithubRetry(
        total=total,
        backoff_factor=backoff_factor,
        secondary_rate_wait=secondary_rate_wait,
        max_rate_limit_wait=300,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def retry_call(
    operation: Callable[[], T],
    *,
    attempts: int = 4,
    delay: float = 1.0,
    retry_on: frozenset[int] = RACE_STATUSES,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation`` again (it must re-read what it depends on) while it fails with one of ``retry_on``."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except GithubException as exc:
            if exc.status not in retry_on or attempt == attempts:
                raise
            sleep(delay * attempt)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def explain(exc: BaseException, action: str, masker: Masker) -> str:
    """One masked line: what failed (``action``: "comment", "assets", "read"), why, and what to change."""
    if isinstance(exc, GithubException):
        message = exc.message or (exc.data.get("message") if isinstance(exc.data, dict) else None) or str(exc.data)
        text = f"GitHub answered {exc.status}: {message}"
        permission = PERMISSIONS.get(action)
        if exc.status in (401,):
            text += " (the token is invalid or expired)"
        elif exc.status in (403, 404) and permission and not _rate_limited(message):
            text += (
                f" (the token lacks the permission `{permission}`: add `permissions: {{{permission.split(':')[0]}: "
                f"{permission.split(': ')[1]}}}` to the job; pull requests from forks get a read-only token, see "
                "the fork-safe workflow)"
            )
        elif _rate_limited(message):
            text += " (rate limited; retried until the wait would exceed the job's patience)"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return masker.mask(f"{action}: {text}")


def _rate_limited(message: str | None) -> bool:
    return bool(message) and "rate limit" in str(message).lower()
