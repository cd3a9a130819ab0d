"""A local stand-in for GitHub's REST API (v3), for the endpoints the publisher's PyGithub calls make.

PyGithub is pointed at it unchanged (``Github(base_url=fake.url)``), so request paths, query parameters, JSON
shapes, status codes and headers are those of api.github.com. Every object carries its API ``url`` built from
this server's address, because PyGithub follows the ``url`` it was given (an edited comment is PATCHed at its own
``url``, a next page is fetched from the ``Link`` header), exactly as it does against GitHub.

Endpoints (real path -> what the fake does):

- ``GET /user``: the token's user; for an installation token (the workflow's ``GITHUB_TOKEN``) 403 "Resource not
  accessible by integration", as GitHub answers. Unknown tokens: 401 "Bad credentials" on every endpoint.
- ``GET /repos/{owner}/{repo}``: the repository (``private``, ``default_branch``, ``permissions``).
- ``GET /repos/{o}/{r}/issues/{n}``, ``GET /repos/{o}/{r}/pulls/{n}``: the PR as an issue and as a pull request
  (``head.sha``).
- ``GET /repos/{o}/{r}/issues/{n}/comments?per_page=&page=``: comments oldest first, paginated (default 30, at most
  100 per page) with GitHub's ``Link`` header (``rel="next"``, ``"last"``, ``"first"``, ``"prev"``).
- ``POST /repos/{o}/{r}/issues/{n}/comments`` (201), ``PATCH /repos/{o}/{r}/issues/comments/{id}`` (200; 403 when
  the token's user is not the author and cannot edit, 404 for an unknown id); a body over 65,536 characters: 422.
- ``GET /repos/{o}/{r}/git/ref/heads/{branch}`` (404 "Not Found" when missing), ``POST .../git/trees`` (inline
  ``content`` entries), ``POST .../git/commits`` (parents may be empty: an orphan commit), ``POST .../git/refs``
  (422 "Reference already exists").
- ``GET /repos/{o}/{r}/contents/{path}?ref=`` (a file, base64; 404), ``PUT /repos/{o}/{r}/contents/{path}``
  (create 201; update 200 with the current blob ``sha``; 422 when the file exists and no ``sha`` was supplied;
  409 when the ``sha`` is stale; 404 when the branch does not exist). Each write is a commit; ``raw(commit, path)``
  reads a file as ``raw.githubusercontent.com/{o}/{r}/{commit}/{path}`` would (immutable per commit).

Permissions: each token has ``pull_requests`` and ``contents`` levels ("read"/"write"); a write without the level
answers 403 "Resource not accessible by integration" (what a fork's read-only token or a missing ``permissions:``
entry gets). Faults, injected per (method, path regex) for the next N matching requests: 5xx with GitHub's error
body, and the secondary rate limit: 403 with ``Retry-After`` and the message PyGithub's ``GithubRetry`` recognises.
Every request is recorded (method, path, query, JSON body, whether it was authenticated) for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STAMP = "2026-11-22T12:00:00Z"
NOT_ACCESSIBLE = "Resource not accessible by integration"
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to "
    "GitHub Support for help, please include the request ID."
)
DOCS = "https://docs.github.com/rest"


@dataclass
class Token:
    login: str
    installation: bool = False  # a GITHUB_TOKEN: GET /user is 403
    pull_requests: str = "write"
    contents: str = "write"


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    count: int
    retry_after: int | None = None
    message: str = "Server Error"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authenticated: bool
    status: int = 0


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    login: str


@dataclass
class Repo:
    owner: str
    name: str
    private: bool = False
    default_branch: str = "main"
    pulls: dict[int, str] = field(default_factory=dict)  # number -> head sha
    comments: list[Comment] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> the whole tree (path -> bytes)
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's object id


class FakeGitHub:
    """``with FakeGitHub() as gh:`` serves on 127.0.0.1; ``gh.url`` is PyGithub's ``base_url``."""

    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.repos: dict[str, Repo] = {}
        self.users: dict[str, int] = {}
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self._ids = itertools.count(1001)
        self._shas = itertools.count(1)
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------------------------------------ set-up
    def add_token(self, token: str, login: str, **kwargs: Any) -> Token:
        self.tokens[token] = Token(login, **kwargs)
        return self.tokens[token]

    def add_repo(self, full_name: str, *, private: bool = False) -> Repo:
        owner, name = full_name.split("/")
        self.repos[full_name] = Repo(owner, name, private=private)
        return self.repos[full_name]

    def add_pull(self, full_name: str, number: int, head_sha: str) -> None:
        self.repos[full_name].pulls[number] = head_sha

    def add_comment(self, full_name: str, number: int, body: str, login: str) -> Comment:
        comment = Comment(next(self._ids), number, body, login)
        self.repos[full_name].comments.append(comment)
        return comment

    def fail(
        self, method: str, path: str, status: int, count: int = 1, retry_after: int | None = None, message: str = ""
    ) -> None:
        """The next ``count`` requests matching ``method`` and the ``path`` regex answer ``status``."""
        default = SECONDARY if status == 403 else "Server Error"
        self.faults.append(Fault(method, re.compile(path), status, count, retry_after, message or default))

    # ------------------------------------------------------------------------------------------------ reading
    def comments(self, full_name: str, number: int) -> list[Comment]:
        return [c for c in self.repos[full_name].comments if c.issue == number]

    def raw(self, full_name: str, commit: str, path: str) -> bytes | None:
        return self.repos[full_name].commits.get(commit, {}).get(path)

    def sha(self) -> str:
        return hashlib.sha1(f"fake-{next(self._shas)}".encode()).hexdigest()  # noqa: S324


# ---------------------------------------------------------------------------------------------------- the handler
def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def _dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization", "")
            token = auth.split(" ", 1)[1] if " " in auth else ""
            record = Recorded(method, parts.path, parse_qs(parts.query), body, bool(token))
            with fake._lock:
                fake.requests.append(record)
                status, payload, headers = self._answer(method, parts.path, parse_qs(parts.query), body, token)
            record.status = status
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _answer(
            self, method: str, path: str, query: dict[str, list[str]], body: Any, token: str
        ) -> tuple[int, Any, dict[str, str]]:
            for fault in fake.faults:
                if fault.count > 0 and fault.method == method and fault.path.search(path):
                    fault.count -= 1
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    return fault.status, {"message": fault.message, "documentation_url": DOCS}, headers
            who = fake.tokens.get(token)
            if who is None:
                return 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, {}
            if path == "/user":
                if who.installation:
                    return 403, _error(NOT_ACCESSIBLE), {}
                return 200, _user(fake, who.login), {}
            match = re.match(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?P<rest>/.*)?$", path)
            repo = fake.repos.get(f"{match['owner']}/{match['repo']}") if match else None
            if match is None or repo is None:
                return 404, _error("Not Found"), {}
            return _repo_route(fake, repo, who, method, match["rest"] or "", query, body)

    return Handler


def _error(message: str) -> dict[str, str]:
    return {"message": message, "documentation_url": DOCS}


def _user(fake: FakeGitHub, login: str) -> dict[str, Any]:
    uid = fake.users.setdefault(login, 100 + len(fake.users))
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_{uid}",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "url": f"{fake.url}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "site_admin": False,
    }


def _repo_json(fake: FakeGitHub, repo: Repo) -> dict[str, Any]:
    base = f"{fake.url}/repos/{repo.full_name}"
    return {
        "id": abs(hash(repo.full_name)) % 10**8,
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": _user(fake, repo.owner),
        "private": repo.private,
        "visibility": "private" if repo.private else "public",
        "default_branch": repo.default_branch,
        "url": base,
        "html_url": f"https://github.com/{repo.full_name}",
        "issues_url": base + "/issues{/number}",
        "pulls_url": base + "/pulls{/number}",
        "contents_url": base + "/contents/{+path}",
        "git_refs_url": base + "/git/refs{/sha}",
    }


def _comment_json(fake: FakeGitHub, repo: Repo, c: Comment) -> dict[str, Any]:
    base = f"{fake.url}/repos/{repo.full_name}"
    return {
        "id": c.id,
        "node_id": f"IC_{c.id}",
        "url": f"{base}/issues/comments/{c.id}",
        "html_url": f"https://github.com/{repo.full_name}/pull/{c.issue}#issuecomment-{c.id}",
        "issue_url": f"{base}/issues/{c.issue}",
        "body": c.body,
        "user": _user(fake, c.login),
        "created_at": STAMP,
        "updated_at": STAMP,
        "author_association": "NONE",
    }


def _pages(
    fake: FakeGitHub, path: str, query: dict[str, list[str]], items: list[Any]
) -> tuple[list[Any], dict[str, str]]:
    """GitHub's pagination: ``per_page`` (default 30, max 100), ``page`` from 1, and the ``Link`` header."""
    per_page = max(1, min(int(query.get("per_page", ["30"])[0]), 100))
    page = max(1, int(query.get("page", ["1"])[0]))
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]

    def link(n: int, rel: str) -> str:
        return f'<{fake.url}{path}?per_page={per_page}&page={n}>; rel="{rel}"'

    links = []
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    return chunk, ({"Link": ", ".join(links)} if links else {})


def _repo_route(
    fake: FakeGitHub, repo: Repo, who: Token, method: str, rest: str, query: dict[str, list[str]], body: Any
) -> tuple[int, Any, dict[str, str]]:
    base = f"{fake.url}/repos/{repo.full_name}"
    if rest == "" and method == "GET":
        return 200, _repo_json(fake, repo), {}
    m = re.match(r"^/(issues|pulls)/(\d+)$", rest)
    if m and method == "GET":
        number = int(m[2])
        if number not in repo.pulls:
            return 404, _error("Not Found"), {}
        data: dict[str, Any] = {
            "id": number,
            "number": number,
            "url": f"{base}/{m[1]}/{number}",
            "html_url": f"https://github.com/{repo.full_name}/pull/{number}",
            "state": "open",
            "title": f"PR {number}",
            "user": _user(fake, "contributor"),
            "comments_url": f"{base}/issues/{number}/comments",
        }
        if m[1] == "pulls":
            data["head"] = {"sha": repo.pulls[number], "ref": "feature", "repo": _repo_json(fake, repo)}
        else:
            data["pull_request"] = {"url": f"{base}/pulls/{number}"}
        return 200, data, {}
    m = re.match(r"^/issues/(\d+)/comments$", rest)
    if m:
        number = int(m[1])
        if number not in repo.pulls:
            return 404, _error("Not Found"), {}
        if method == "GET":
            items = [_comment_json(fake, repo, c) for c in repo.comments if c.issue == number]
            chunk, headers = _pages(fake, f"/repos/{repo.full_name}{rest}", query, items)
            return 200, chunk, headers
        if method == "POST":
            if who.pull_requests != "write":
                return 403, _error(NOT_ACCESSIBLE), {}
            text = (body or {}).get("body")
            if not isinstance(text, str) or len(text) > 65536:
                return 422, _validation("body is too long (maximum is 65536 characters)"), {}
            comment = fake.add_comment(repo.full_name, number, text, who.login)
            return 201, _comment_json(fake, repo, comment), {"Location": f"{base}/issues/comments/{comment.id}"}
    m = re.match(r"^/issues/comments/(\d+)$", rest)
    if m:
        found = next((c for c in repo.comments if c.id == int(m[1])), None)
        if found is None:
            return 404, _error("Not Found"), {}
        if method == "GET":
            return 200, _comment_json(fake, repo, found), {}
        if method == "PATCH":
            if who.pull_requests != "write" or found.login != who.login:
                return 403, _error(NOT_ACCESSIBLE), {}
            text = (body or {}).get("body")
            if not isinstance(text, str) or len(text) > 65536:
                return 422, _validation("body is too long (maximum is 65536 characters)"), {}
            found.body = text
            return 200, _comment_json(fake, repo, found), {}
    m = re.match(r"^/git/ref/heads/(.+)$", rest)
    if m and method == "GET":
        head = repo.branches.get(m[1])
        if head is None:
            return 404, _error("Not Found"), {}
        return 200, _ref_json(base, f"refs/heads/{m[1]}", head), {}
    if rest == "/git/trees" and method == "POST":
        if who.contents != "write":
            return 403, _error(NOT_ACCESSIBLE), {}
        files = dict(repo.trees.get((body or {}).get("base_tree", ""), {}))
        for entry in (body or {}).get("tree", []):
            files[entry["path"]] = str(entry.get("content", "")).encode()
        sha = fake.sha()
        repo.trees[sha] = files
        return 201, {"sha": sha, "url": f"{base}/git/trees/{sha}", "tree": [], "truncated": False}, {}
    if rest == "/git/commits" and method == "POST":
        if who.contents != "write":
            return 403, _error(NOT_ACCESSIBLE), {}
        tree = (body or {}).get("tree")
        if tree not in repo.trees:
            return 422, _validation("Tree SHA does not exist"), {}
        sha = fake.sha()
        repo.commits[sha] = dict(repo.trees[tree])
        parents = [{"sha": p, "url": f"{base}/git/commits/{p}"} for p in (body or {}).get("parents", [])]
        return 201, _commit_json(base, sha, tree, body.get("message", ""), parents), {}
    if rest == "/git/refs" and method == "POST":
        if who.contents != "write":
            return 403, _error(NOT_ACCESSIBLE), {}
        ref, sha = (body or {}).get("ref", ""), (body or {}).get("sha", "")
        if not ref.startswith("refs/heads/") or sha not in repo.commits:
            return 422, _validation("Reference update failed"), {}
        name = ref.removeprefix("refs/heads/")
        if name in repo.branches:
            return 422, _validation("Reference already exists"), {}
        repo.branches[name] = sha
        return 201, _ref_json(base, ref, sha), {}
    m = re.match(r"^/contents/(.+)$", rest)
    if m:
        return _contents(fake, repo, who, method, m[1], query, body)
    return 404, _error("Not Found"), {}


def _validation(message: str) -> dict[str, Any]:
    return {"message": "Validation Failed", "errors": [{"message": message}], "documentation_url": DOCS}


def _ref_json(base: str, ref: str, sha: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "node_id": f"REF_{sha[:8]}",
        "url": f"{base}/git/{ref}",
        "object": {"type": "commit", "sha": sha, "url": f"{base}/git/commits/{sha}"},
    }


def _commit_json(base: str, sha: str, tree: str, message: str, parents: list[dict[str, str]]) -> dict[str, Any]:
    author = {"name": "github-actions[bot]", "email": "bot@example.invalid", "date": STAMP}
    return {
        "sha": sha,
        "node_id": f"C_{sha[:8]}",
        "url": f"{base}/git/commits/{sha}",
        "html_url": f"https://github.com/commit/{sha}",
        "author": author,
        "committer": author,
        "message": message,
        "tree": {"sha": tree, "url": f"{base}/git/trees/{tree}"},
        "parents": parents,
    }


def _content_json(base: str, path: str, data: bytes, *, with_content: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "file",
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": blob_sha(data),
        "size": len(data),
        "url": f"{base}/contents/{path}",
        "git_url": f"{base}/git/blobs/{blob_sha(data)}",
        "html_url": None,
        "download_url": None,
    }
    if with_content:
        out["encoding"] = "base64"
        out["content"] = base64.encodebytes(data).decode()
    return out


def _contents(
    fake: FakeGitHub, repo: Repo, who: Token, method: str, path: str, query: dict[str, list[str]], body: Any
) -> tuple[int, Any, dict[str, str]]:
    base = f"{fake.url}/repos/{repo.full_name}"
    if method == "GET":
        branch = query.get("ref", [repo.default_branch])[0]
        head = repo.branches.get(branch)
        data = repo.commits.get(head or "", {}).get(path)
        if data is None:
            return 404, _error("Not Found"), {}
        return 200, _content_json(base, path, data, with_content=True), {}
    if method != "PUT":
        return 404, _error("Not Found"), {}
    if who.contents != "write":
        return 403, _error(NOT_ACCESSIBLE), {}
    branch = (body or {}).get("branch", repo.default_branch)
    head = repo.branches.get(branch)
    if head is None:
        return 404, {"message": f"Branch {branch} not found", "documentation_url": DOCS}, {}
    files = dict(repo.commits[head])
    existing = files.get(path)
    given = (body or {}).get("sha")
    if existing is not None and given is None:
        return 422, {"message": 'Invalid request.\n\n"sha" wasn\'t supplied.', "documentation_url": DOCS}, {}
    if existing is not None and given != blob_sha(existing):
        return 409, {"message": f"{path} does not match {given}", "documentation_url": DOCS}, {}
    data = base64.b64decode((body or {})["content"])
    files[path] = data
    sha = fake.sha()
    repo.commits[sha] = files
    repo.branches[branch] = sha
    commit = _commit_json(
        base, sha, fake.sha(), body.get("message", ""), [{"sha": head, "url": f"{base}/git/commits/{head}"}]
    )
    status = 201 if existing is None else 200
    return status, {"content": _content_json(base, path, data, with_content=False), "commit": commit}, {}
