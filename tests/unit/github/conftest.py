"""Fixtures for the GitHub publisher: a running fake GitHub (tests/integration/fake_github.py) and a client on it.

The client is PyGithub itself with our retry policy, pointed at the fake; only the waits are shortened (no backoff
between retries, no second between writes) so the suite stays fast. Retry-After is still honoured as sent.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Github

from autotuner.github import make_client
from autotuner.report import write_report
from autotuner.results import StudyResult
from tests.integration.fake_github import FakeGitHub

TOKEN = "ghs_FAKEtoken0123456789abcdef"  # an installation token, like the workflow's GITHUB_TOKEN
REPO = "acme/serving"
PR = 7
HEAD = "c0ffee" + "0" * 34
FIXTURE = Path(__file__).parents[2] / "fixtures" / "report" / "smollm2-cpu-results.json"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_token(TOKEN, "github-actions[bot]", installation=True)
        server.add_repo(REPO)
        server.add_pull(REPO, PR, HEAD)
        yield server


@pytest.fixture
def gh(fake: FakeGitHub) -> Github:
    return make_client(TOKEN, fake.url, backoff=0.0, write_interval=0.0)


@pytest.fixture(scope="session")
def rendered_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report dir holding one spec's run like `pytest --tune` leaves it: <spec>/<run>/ + latest, rendered once."""
    root = tmp_path_factory.mktemp("reports")
    run = root / "smollm2-cpu" / "20261122-120000-abcdef"
    run.mkdir(parents=True)
    shutil.copy(FIXTURE, run / "results.json")
    (root / "smollm2-cpu" / "latest").symlink_to(run.name)
    write_report(StudyResult.read(run / "results.json"), run)
    return root


@pytest.fixture
def report_dir(rendered_run: Path, tmp_path: Path) -> Path:
    """A private copy of the rendered run (tests write comment and summary files into it)."""
    target = tmp_path / "reports"
    shutil.copytree(rendered_run, target, symlinks=True)
    return target
