"""Where a publish runs: the repository, pull request and commit, read from the runner's ``GITHUB_*`` variables
and the event payload file (pure parsing of a mapping and a dict; the caller reads the file).

Why a value of its own: the same publisher runs in three places that describe the pull request differently. In a
``pull_request`` job the payload carries it; in the fork-safe ``workflow_run`` job the payload names only the run
(``workflow_run.pull_requests`` is empty for forks), so the PR number comes from a ``pr.json`` the first job put in
its artifact, which is untrusted and checked against the API by the caller; on a push to main there is no PR.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_API = "https://api.github.com"
DEFAULT_SERVER = "https://github.com"


@dataclass(frozen=True)
class PullRequestRef:
    """A PR as the tuning job saw it: its number and the head commit it measured."""

    number: int
    head_sha: str

    def to_json(self) -> str:
        return json.dumps({"number": self.number, "head_sha": self.head_sha})

    @classmethod
    def from_json(cls, text: str) -> PullRequestRef:
        """Strict: this comes from an artifact a fork's code could have written (a number and 40 hex digits)."""
        data = json.loads(text)
        number, head = data.get("number"), data.get("head_sha")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ValueError(f"pr.json: 'number' must be a positive integer, got {number!r}")
        if not isinstance(head, str) or len(head) != 40 or any(c not in "0123456789abcdef" for c in head):
            raise ValueError("pr.json: 'head_sha' must be a 40-hex-digit commit id")
        return cls(number, head)


@dataclass(frozen=True)
class GitHubContext:
    repository: str  # owner/name
    api_url: str
    server_url: str
    event_name: str
    sha: str  # the commit measured: the PR's head on pull_request events, else GITHUB_SHA
    run_id: str | None
    pull_request: PullRequestRef | None
    private: bool | None  # from the payload's repository; None: unknown (asked from the API when needed)
    workflow_run_head_sha: str | None = None  # workflow_run events: the commit the tuning run measured
    workflow_run_url: str | None = None  # workflow_run events: the tuning run (its page lists the artifact)

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def run_url(self) -> str | None:
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}" if self.run_id else None


def read_event(environ: Mapping[str, str]) -> dict[str, Any]:
    """The event payload (``GITHUB_EVENT_PATH``), or {} when there is none (a local run)."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def context_from(environ: Mapping[str, str], event: Mapping[str, Any]) -> GitHubContext:
    """The context of this run; a ``ValueError`` names the variable that is missing."""
    repository = environ.get("GITHUB_REPOSITORY", "")
    if "/" not in repository:
        raise ValueError("GITHUB_REPOSITORY is not set (owner/name): is this running in GitHub Actions?")
    event_name = environ.get("GITHUB_EVENT_NAME", "")
    pr: dict[str, Any] | None = event["pull_request"] if isinstance(event.get("pull_request"), dict) else None
    pull_request = None
    sha = environ.get("GITHUB_SHA", "")
    if pr is not None:
        head = str((pr.get("head") or {}).get("sha", ""))
        pull_request = PullRequestRef(int(pr["number"]), head)
        sha = head or sha  # GITHUB_SHA is the merge commit on pull_request events; the PR's head is what people see
    repo: dict[str, Any] = event["repository"] if isinstance(event.get("repository"), dict) else {}
    private = repo.get("private") if isinstance(repo.get("private"), bool) else None
    run: dict[str, Any] = event["workflow_run"] if isinstance(event.get("workflow_run"), dict) else {}
    return GitHubContext(
        repository=repository,
        api_url=environ.get("GITHUB_API_URL") or DEFAULT_API,
        server_url=environ.get("GITHUB_SERVER_URL") or DEFAULT_SERVER,
        event_name=event_name,
        sha=sha,
        run_id=environ.get("GITHUB_RUN_ID") or None,
        pull_request=pull_request,
        private=private,
        workflow_run_head_sha=run.get("head_sha") or None,
        workflow_run_url=run.get("html_url") or None,
    )
