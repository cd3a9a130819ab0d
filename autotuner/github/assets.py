"""Chart PNGs for a PR comment: committed to an assets branch and embedded by immutable raw URLs.

Why a branch: the API cannot attach an image to a comment, and a third-party image host is a dependency (and a
leak) we do not want. Each run writes its charts under ``<owner>/<repo>/pr-<n>/<commit>/<chart>.png`` (``push-``
and the ref name instead of ``pr-<n>`` outside PRs) on a branch that shares no history with the code (an orphan
commit, so checking it out never drags the project along), and embeds them by the URL of the commit that added
them: a later run that rewrites the chart never changes what an old comment shows.

Private repositories: raw URLs need the reader's session and do not render in comments reliably, so nothing is
pushed there and the publisher falls back to the Mermaid chart plus a link to the run's artifact.

Writes go through the contents API, one commit per chart; a concurrent run moving the branch (409) or creating
the same file (422) is retried after re-reading the file (``retry_call``). The PNGs may come from an artifact a
fork's code produced (the fork-safe workflow), so only files that are PNGs, and not huge, are pushed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from github import Github, GithubException, InputGitTreeElement
from github.Repository import Repository

from .context import GitHubContext
from .retry import retry_call

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 5 * 1024 * 1024
DEFAULT_BRANCH = "autotuner-assets"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
README = (
    "# Charts of inference-autotuner runs\n\nWritten by the inference-autotuner GitHub Action; PR comments embed "
    "these files by commit, so deleting this branch only breaks the images of old comments.\n"
)


@dataclass(frozen=True)
class Asset:
    name: str  # chart name (file stem), e.g. "objective"
    path: str  # path on the assets branch
    url: str  # immutable URL (pinned to the commit that wrote the file)


def asset_folder(ctx: GitHubContext, spec: str, ref_name: str | None = None) -> str:
    """``owner/repo/pr-12/<sha>/<spec>``: keyed by repository, PR (or ref) and commit, so runs never overwrite."""
    where = f"pr-{ctx.pull_request.number}" if ctx.pull_request else f"push-{_UNSAFE.sub('-', ref_name or 'unknown')}"
    return f"{ctx.repository}/{where}/{ctx.sha or 'unknown'}/{_UNSAFE.sub('-', spec)}"


def raw_url(ctx: GitHubContext, commit: str, path: str) -> str:
    """The immutable URL of ``path`` at ``commit``: raw.githubusercontent.com on github.com, ``/raw/`` on GHES."""
    if ctx.server_url.rstrip("/") == "https://github.com":
        return f"https://raw.githubusercontent.com/{ctx.repository}/{commit}/{path}"
    return f"{ctx.server_url.rstrip('/')}/{ctx.repository}/raw/{commit}/{path}"


def git_blob_sha(data: bytes) -> str:
    """Git's object id of ``data`` (what the contents API reports as ``sha``): tells an identical file apart."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's id, not security


def checked_png(path: Path) -> bytes:
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path.name}: not a PNG file")
    if len(data) > MAX_PNG_BYTES:
        raise ValueError(f"{path.name}: {len(data)} bytes, more than the {MAX_PNG_BYTES} a chart may have")
    return data


def ensure_branch(repo: Repository, branch: str) -> None:
    """Create ``branch`` as an orphan commit holding a README, unless it exists (a racing run may create it)."""
    try:
        repo.get_git_ref(f"heads/{branch}")
        return
    except GithubException as exc:
        if exc.status != 404:
            raise
    tree = repo.create_git_tree([InputGitTreeElement("README.md", "100644", "blob", content=README)])
    commit = repo.create_git_commit("Start the inference-autotuner assets branch", tree, [])
    try:
        repo.create_git_ref(f"refs/heads/{branch}", commit.sha)
    except GithubException as exc:
        if exc.status != 422:  # "Reference already exists": another run made it first
            raise


def upload_charts(
    gh: Github, ctx: GitHubContext, charts: dict[str, Path], folder: str, branch: str = DEFAULT_BRANCH
) -> dict[str, Asset]:
    """Push ``charts`` (name -> PNG file) to ``branch`` under ``folder``; their immutable URLs by name."""
    if not charts:
        return {}
    repo = gh.get_repo(ctx.repository)
    ensure_branch(repo, branch)
    assets: dict[str, Asset] = {}
    for name, file in charts.items():
        data = checked_png(file)
        path = f"{folder}/{file.name}"
        commit = retry_call(lambda p=path, d=data: _put(repo, branch, p, d))  # type: ignore[misc]
        assets[name] = Asset(name, path, raw_url(ctx, commit, path))
    return assets


def _put(repo: Repository, branch: str, path: str, data: bytes) -> str:
    """Write one file; the commit id that holds it (the branch head when an identical file is already there)."""
    message = f"autotuner chart {path}"
    try:
        existing = repo.get_contents(path, ref=branch)
    except GithubException as exc:
        if exc.status != 404:
            raise
        existing = None
    if existing is None:
        return str(repo.create_file(path, message, data, branch=branch)["commit"].sha)
    if isinstance(existing, list):
        raise ValueError(f"{path} is a folder on the assets branch")
    if existing.sha == git_blob_sha(data):
        return str(repo.get_git_ref(f"heads/{branch}").object.sha)
    return str(repo.update_file(path, message, data, existing.sha, branch=branch)["commit"].sha)
