"""The run's context from GITHUB_* variables and the event payload; the artifact's pr.json is checked strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotuner.github import PullRequestRef, context_from
from autotuner.github.context import read_event


def test_pull_request_event(tmp_path: Path) -> None:
    event = {
        "pull_request": {"number": 12, "head": {"sha": "a" * 40}},
        "repository": {"private": True, "full_name": "o/r"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    env = {
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_SHA": "b" * 40,  # the merge commit
        "GITHUB_RUN_ID": "99",
        "GITHUB_SERVER_URL": "https://github.com",
    }
    ctx = context_from(env, read_event(env))
    assert ctx.pull_request == PullRequestRef(12, "a" * 40)
    assert ctx.sha == "a" * 40 and ctx.private is True
    assert ctx.run_url == "https://github.com/o/r/actions/runs/99"
    assert ctx.api_url == "https://api.github.com"


def test_push_and_workflow_run_events() -> None:
    push = context_from({"GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "c" * 40, "GITHUB_EVENT_NAME": "push"}, {})
    assert push.pull_request is None and push.sha == "c" * 40 and push.private is None
    run = context_from(
        {"GITHUB_REPOSITORY": "o/r", "GITHUB_EVENT_NAME": "workflow_run"},
        {
            "workflow_run": {
                "head_sha": "d" * 40,
                "html_url": "https://github.com/o/r/actions/runs/5",
                "pull_requests": [],
            }
        },
    )
    assert run.pull_request is None and run.workflow_run_head_sha == "d" * 40
    assert run.workflow_run_url == "https://github.com/o/r/actions/runs/5"
    with pytest.raises(ValueError, match="GITHUB_REPOSITORY"):
        context_from({}, {})


@pytest.mark.parametrize(
    "text",
    [
        '{"number": "12", "head_sha": "' + "a" * 40 + '"}',
        '{"number": 0, "head_sha": "' + "a" * 40 + '"}',
        '{"number": true, "head_sha": "' + "a" * 40 + '"}',
        '{"number": 12, "head_sha": "main"}',
        '{"number": 12, "head_sha": "' + "A" * 40 + '"}',
    ],
)
def test_pr_file_is_strict(text: str) -> None:
    with pytest.raises(ValueError):
        PullRequestRef.from_json(text)


def test_pr_file_roundtrip() -> None:
    ref = PullRequestRef(3, "e" * 40)
    assert PullRequestRef.from_json(ref.to_json()) == ref
