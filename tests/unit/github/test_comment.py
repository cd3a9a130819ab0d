"""The sticky comment: found by marker and author across pages, edited in place, never hijacked."""

from __future__ import annotations

import pytest
from github import Github

from autotuner.github import find_sticky, marker, upsert_sticky
from autotuner.github.comment import ACTIONS_BOT, MAX_COMMENT_CHARS, own_login
from tests.integration.fake_github import FakeGitHub

from .conftest import PR, REPO, TOKEN


def body(text: str, key: str = "tuning_specs/") -> str:
    return f"{marker(key)}\n{text}"


def test_created_once_then_edited_in_place(fake: FakeGitHub, gh: Github) -> None:
    first = upsert_sticky(gh, REPO, PR, body("run 1"), marker("tuning_specs/"), token=TOKEN)
    second = upsert_sticky(gh, REPO, PR, body("run 2"), marker("tuning_specs/"), token=TOKEN)
    assert first.created and not second.created
    assert first.comment_id == second.comment_id
    comments = fake.comments(REPO, PR)
    assert len(comments) == 1 and comments[0].body.endswith("run 2")
    assert comments[0].login == ACTIONS_BOT
    assert [r.method for r in fake.requests if r.method != "GET"] == ["POST", "PATCH"]


def test_unchanged_body_is_not_rewritten(fake: FakeGitHub, gh: Github) -> None:
    upsert_sticky(gh, REPO, PR, body("same"), marker("tuning_specs/"), token=TOKEN)
    upsert_sticky(gh, REPO, PR, body("same"), marker("tuning_specs/"), token=TOKEN)
    assert [r.method for r in fake.requests].count("PATCH") == 0


def test_found_on_a_later_page(fake: FakeGitHub, gh: Github) -> None:
    for i in range(130):
        fake.add_comment(REPO, PR, f"chatter {i}", "someone")
    ours = fake.add_comment(REPO, PR, body("old run"), ACTIONS_BOT)
    for i in range(120):
        fake.add_comment(REPO, PR, f"more chatter {i}", "someone")
    posted = upsert_sticky(gh, REPO, PR, body("new run"), marker("tuning_specs/"), token=TOKEN)
    assert posted.comment_id == ours.id and not posted.created
    pages = [r.query.get("page", ["1"])[0] for r in fake.requests if r.path.endswith(f"/issues/{PR}/comments")]
    assert "2" in pages  # the second page of 100 was fetched through the Link header


def test_a_quoted_marker_from_someone_else_is_not_ours(fake: FakeGitHub, gh: Github) -> None:
    intruder = fake.add_comment(REPO, PR, body("I pasted your marker"), "mallory")
    quoted = fake.add_comment(REPO, PR, f"> {marker('tuning_specs/')}\nquoting the bot", ACTIONS_BOT)
    posted = upsert_sticky(gh, REPO, PR, body("ours"), marker("tuning_specs/"), token=TOKEN)
    assert posted.created
    assert posted.comment_id not in (intruder.id, quoted.id)
    assert fake.comments(REPO, PR)[0].body.endswith("I pasted your marker")


def test_one_comment_per_spec_set(fake: FakeGitHub, gh: Github) -> None:
    upsert_sticky(gh, REPO, PR, body("cpu", "specs/cpu"), marker("specs/cpu"), token=TOKEN)
    upsert_sticky(gh, REPO, PR, body("gpu", "specs/gpu"), marker("specs/gpu"), token=TOKEN)
    upsert_sticky(gh, REPO, PR, body("cpu 2", "specs/cpu"), marker("specs/cpu"), token=TOKEN)
    assert sorted(c.body.splitlines()[1] for c in fake.comments(REPO, PR)) == ["cpu 2", "gpu"]


def test_login_of_a_personal_token_comes_from_the_api(fake: FakeGitHub) -> None:
    from autotuner.github import make_client

    fake.add_token("ghp_personal_token_123", "octocat")
    client = make_client("ghp_personal_token_123", fake.url, backoff=0.0, write_interval=0.0)
    assert own_login(client, token="ghp_personal_token_123") == "octocat"
    fake.add_token("weird_installation_token", "my-app[bot]", installation=True)
    other = make_client("weird_installation_token", fake.url, backoff=0.0, write_interval=0.0)
    assert own_login(other) == ACTIONS_BOT  # GET /user is 403 for installation tokens
    assert own_login(other, author="my-app[bot]") == "my-app[bot]"


def test_marker_is_a_single_safe_line() -> None:
    mark = marker("tuning_specs/a.yaml tuning_specs/b.yaml\n-->evil")
    assert mark.startswith("<!-- ") and mark.endswith(" -->") and "\n" not in mark
    assert mark.count("-->") == 1


def test_body_limits(gh: Github) -> None:
    with pytest.raises(ValueError, match="marker"):
        upsert_sticky(gh, REPO, PR, "no marker", marker("x"), token=TOKEN)
    with pytest.raises(ValueError, match="65536"):
        upsert_sticky(gh, REPO, PR, marker("x") + "\n" + "a" * MAX_COMMENT_CHARS, marker("x"), token=TOKEN)


def test_find_sticky_needs_marker_on_its_own_line() -> None:
    class User:
        login = ACTIONS_BOT

    class C:
        id = 1
        user = User()
        body = "text " + marker("k")

        def edit(self, body: str) -> None: ...

    assert find_sticky([C()], marker("k"), ACTIONS_BOT) is None
