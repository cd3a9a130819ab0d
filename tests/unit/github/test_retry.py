"""Transient GitHub errors are retried (5xx, secondary rate limits with Retry-After); permanent ones are
explained, naming the missing permission, with the token masked."""

from __future__ import annotations

import time

import pytest
from github import Github, GithubException

from autotuner.github import explain, marker, retry_call, upsert_sticky
from autotuner.secrets import Masker
from tests.integration.fake_github import FakeGitHub

from .conftest import PR, REPO, TOKEN


def test_server_errors_are_retried(fake: FakeGitHub, gh: Github) -> None:
    fake.fail("GET", r"/issues/\d+/comments$", 502, count=2)
    fake.fail("POST", r"/issues/\d+/comments$", 503, count=1)
    posted = upsert_sticky(gh, REPO, PR, f"{marker('k')}\nhello", marker("k"), token=TOKEN)
    assert posted.created
    assert len(fake.comments(REPO, PR)) == 1
    statuses = [r.status for r in fake.requests if r.path.endswith("/comments")]
    assert statuses == [502, 502, 200, 503, 201]


def test_secondary_rate_limit_waits_retry_after(fake: FakeGitHub, gh: Github) -> None:
    fake.fail("POST", r"/issues/\d+/comments$", 403, count=1, retry_after=1)
    started = time.monotonic()
    upsert_sticky(gh, REPO, PR, f"{marker('k')}\nhello", marker("k"), token=TOKEN)
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake.requests if r.method == "POST"] == [403, 201]


def test_persistent_server_error_gives_up(fake: FakeGitHub, gh: Github) -> None:
    fake.fail("GET", r"/issues/\d+/comments$", 500, count=50)
    with pytest.raises(GithubException) as info:
        upsert_sticky(gh, REPO, PR, f"{marker('k')}\nhello", marker("k"), token=TOKEN)
    assert info.value.status == 500
    assert 2 <= sum(1 for r in fake.requests if r.status == 500) <= 6


def test_missing_permission_is_named_and_the_token_masked(fake: FakeGitHub) -> None:
    from autotuner.github import make_client

    fake.add_token(TOKEN + "ro", "github-actions[bot]", installation=True, pull_requests="read", contents="read")
    client = make_client(TOKEN + "ro", fake.url, backoff=0.0, write_interval=0.0)
    with pytest.raises(GithubException) as info:
        upsert_sticky(client, REPO, PR, f"{marker('k')}\nhello", marker("k"), token=TOKEN + "ro")
    assert info.value.status == 403
    masker = Masker.from_environ({}, extra=[TOKEN + "ro"])
    text = explain(GithubException(403, {"message": f"nope {TOKEN}ro"}, None), "comment", masker)
    assert "pull-requests: write" in text and TOKEN not in text
    assert "contents: write" in explain(info.value, "assets", masker)


def test_rate_limit_is_not_called_a_permission_problem() -> None:
    exc = GithubException(403, {"message": "API rate limit exceeded for installation"}, None)
    text = explain(exc, "comment", Masker.from_environ({}))
    assert "rate limited" in text and "permission" not in text


def test_retry_call_repeats_races_only() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise GithubException(409, {"message": "is at abc but expected def"}, None)
        return "ok"

    assert retry_call(flaky, sleep=lambda _: None) == "ok" and len(calls) == 3

    def forbidden() -> str:
        raise GithubException(403, {"message": "Resource not accessible by integration"}, None)

    with pytest.raises(GithubException):
        retry_call(forbidden, sleep=lambda _: None)
