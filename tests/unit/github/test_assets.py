"""Charts on the assets branch: an orphan branch, one folder per repository/PR/commit, immutable URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from github import Github, GithubException

from autotuner.github import GitHubContext, PullRequestRef, asset_folder, raw_url, upload_charts
from autotuner.github.assets import git_blob_sha
from tests.integration.fake_github import FakeGitHub

from .conftest import HEAD, PR, REPO

PNG = b"\x89PNG\r\n\x1a\n" + b"chart-bytes"


def ctx(server: str = "https://github.com") -> GitHubContext:
    return GitHubContext(
        repository=REPO,
        api_url="unused",
        server_url=server,
        event_name="pull_request",
        sha=HEAD,
        run_id="42",
        pull_request=PullRequestRef(PR, HEAD),
        private=False,
    )


def charts(tmp_path: Path, **named: bytes) -> dict[str, Path]:
    out = {}
    for name, data in named.items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        out[name] = path
    return out


def test_upload_creates_an_orphan_branch_and_pins_urls(fake: FakeGitHub, gh: Github, tmp_path: Path) -> None:
    folder = asset_folder(ctx(), "smollm2-cpu")
    assert folder == f"{REPO}/pr-{PR}/{HEAD}/smollm2-cpu"
    assets = upload_charts(gh, ctx(), charts(tmp_path, objective=PNG, history=PNG + b"2"), folder, "assets")
    repo = fake.repos[REPO]
    assert "assets" in repo.branches
    first_commit = next(iter(repo.commits))
    assert set(repo.commits[first_commit]) == {"README.md"}  # orphan: only our README, none of the code
    for name, asset in assets.items():
        prefix = f"https://raw.githubusercontent.com/{REPO}/"
        assert asset.url.startswith(prefix)
        commit = asset.url[len(prefix) :].split("/", 1)[0]
        assert fake.raw(REPO, commit, asset.path) == (PNG if name == "objective" else PNG + b"2")


def test_rerun_reuses_identical_files_and_old_urls_stay_valid(fake: FakeGitHub, gh: Github, tmp_path: Path) -> None:
    folder = asset_folder(ctx(), "s")
    first = upload_charts(gh, ctx(), charts(tmp_path, objective=PNG), folder, "assets")
    commits = len(fake.repos[REPO].commits)
    again = upload_charts(gh, ctx(), charts(tmp_path, objective=PNG), folder, "assets")
    assert len(fake.repos[REPO].commits) == commits  # nothing new written
    assert fake.raw(REPO, again["objective"].url.split("/")[5], again["objective"].path) == PNG
    changed = upload_charts(gh, ctx(), charts(tmp_path, objective=PNG + b"new"), folder, "assets")
    old_commit = first["objective"].url.split("/")[5]
    assert fake.raw(REPO, old_commit, first["objective"].path) == PNG  # the old comment's image is unchanged
    assert fake.raw(REPO, changed["objective"].url.split("/")[5], first["objective"].path) == PNG + b"new"


def test_a_racing_writer_is_retried(fake: FakeGitHub, gh: Github, tmp_path: Path) -> None:
    fake.fail("PUT", r"/contents/", 409, count=1, message="is at 1234 but expected 5678")
    assets = upload_charts(gh, ctx(), charts(tmp_path, objective=PNG), asset_folder(ctx(), "s"), "assets")
    assert [r.status for r in fake.requests if r.method == "PUT"] == [409, 201]
    assert "objective" in assets


def test_branch_created_by_another_run_meanwhile(fake: FakeGitHub, gh: Github, tmp_path: Path) -> None:
    fake.fail("POST", r"/git/refs$", 422, message="Reference already exists")
    repo = fake.repos[REPO]
    # the other run's branch: made right before our create_git_ref fails
    repo.trees["t0"] = {"README.md": b"x"}
    repo.commits["c0"] = {"README.md": b"x"}

    def other_run_made_it() -> None:
        repo.branches.setdefault("assets", "c0")

    other_run_made_it()
    assets = upload_charts(gh, ctx(), charts(tmp_path, objective=PNG), asset_folder(ctx(), "s"), "assets")
    assert assets["objective"].path.endswith("objective.png")


def test_not_a_png_is_refused(gh: Github, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        upload_charts(gh, ctx(), charts(tmp_path, objective=b"<svg/>"), "f", "assets")


def test_no_contents_permission_raises_403(fake: FakeGitHub, tmp_path: Path) -> None:
    from autotuner.github import make_client

    fake.add_token("ghs_readonly_contents", "github-actions[bot]", installation=True, contents="read")
    client = make_client("ghs_readonly_contents", fake.url, backoff=0.0, write_interval=0.0)
    with pytest.raises(GithubException) as info:
        upload_charts(client, ctx(), charts(tmp_path, objective=PNG), "f", "assets")
    assert info.value.status == 403


def test_raw_url_on_enterprise_server() -> None:
    assert (
        raw_url(ctx("https://ghe.example.com"), "abc", "p/x.png") == f"https://ghe.example.com/{REPO}/raw/abc/p/x.png"
    )
    assert git_blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`
