"""One sticky PR comment per spec set: found again by a hidden marker and by its author, edited in place.

Why both: the marker alone can be hijacked (anyone can paste ``<!-- inference-autotuner:... -->`` into a comment
of their own, and we would then try to edit a comment we cannot edit, or worse, believe a stranger's numbers are
ours); the author alone cannot tell two spec sets apart. The search walks every page of comments (PyGithub's
``PaginatedList`` follows the ``Link: rel="next"`` headers), because a busy PR has more than one page and a
comment that is not found is a duplicate posted on every run.

Which login is "ours": ``GET /user`` answers it for a personal token; the workflow's ``GITHUB_TOKEN`` is an
installation token, for which GitHub answers 403 there, and whose comments are authored by
``github-actions[bot]``. A GitHub App's token comments as ``<app-slug>[bot]``: pass it as ``author``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from github import Github, GithubException

MAX_COMMENT_CHARS = 65_536  # GitHub refuses a longer issue comment body (422)
ACTIONS_BOT = "github-actions[bot]"
_KEY = re.compile(r"[^A-Za-z0-9._/-]+")


class _User(Protocol):
    @property
    def login(self) -> str: ...


class _Comment(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def body(self) -> str: ...
    @property
    def user(self) -> _User: ...
    def edit(self, body: str) -> None: ...


def marker(key: str) -> str:
    """The hidden line that names a spec set's comment (``key``: e.g. the specs input, normalised)."""
    clean = _KEY.sub("-", key.strip()).strip("-") or "default"
    return f"<!-- inference-autotuner:sticky key={clean} -->"


def own_login(gh: Github, author: str | None = None, token: str | None = None) -> str:
    """The login the token comments as (see the module docstring for why a 403 means ``github-actions[bot]``).

    An installation token (``ghs_`` prefix: the workflow's ``GITHUB_TOKEN``) is not asked: ``GET /user`` is
    always 403 for it."""
    if author:
        return author
    if token is not None and token.startswith("ghs_"):
        return ACTIONS_BOT
    try:
        return str(gh.get_user().login)
    except GithubException as exc:
        if exc.status in (401, 403, 404):
            return ACTIONS_BOT
        raise


def find_sticky(comments: Iterable[_Comment], mark: str, login: str) -> _Comment | None:
    """Our comment: the first one carrying ``mark`` on a line of its own, written by ``login``."""
    for comment in comments:
        author = comment.user.login if comment.user is not None else ""
        if author.lower() == login.lower() and mark in (comment.body or "").splitlines():
            return comment
    return None


@dataclass(frozen=True)
class Posted:
    comment_id: int
    created: bool  # False: an existing comment was edited
    url: str | None


def upsert_sticky(
    gh: Github,
    repository: str,
    number: int,
    body: str,
    mark: str,
    author: str | None = None,
    token: str | None = None,
) -> Posted:
    """Edit our comment on PR ``number`` in place, or create it; ``body`` must already carry ``mark``."""
    if mark not in body.splitlines():
        raise ValueError("the comment body must carry its marker on a line of its own")
    if len(body) > MAX_COMMENT_CHARS:
        raise ValueError(f"comment of {len(body)} characters; GitHub accepts at most {MAX_COMMENT_CHARS}")
    login = own_login(gh, author, token)
    issue = gh.get_repo(repository).get_issue(number)
    existing = find_sticky(issue.get_comments(), mark, login)
    if existing is not None:
        if existing.body != body:
            existing.edit(body)
        return Posted(existing.id, False, getattr(existing, "html_url", None))
    created = issue.create_comment(body)
    return Posted(created.id, True, created.html_url)
