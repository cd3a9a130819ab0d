"""``autotuner github publish`` end to end against the fake GitHub: comment, charts, summary, outputs, and what
happens without permissions, on private repositories and in the fork-safe workflow_run job."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from github import Github

from autotuner.github import PublishOptions, publish, read_outputs
from autotuner.github.publish import COMMENT_FILE, PR_FILE, SUMMARY_FILE, make_client
from tests.integration.fake_github import FakeGitHub

from .conftest import FIXTURE, HEAD, PR, REPO, TOKEN


def environ(tmp_path: Path, fake: FakeGitHub, event: dict[str, object], name: str = "pull_request") -> dict[str, str]:
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps(event))
    for file in ("output", "summary"):
        (tmp_path / file).write_text("")
    return {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_NAME": name,
        "GITHUB_EVENT_PATH": str(payload),
        "GITHUB_SHA": "f" * 40,
        "GITHUB_RUN_ID": "1234",
        "GITHUB_API_URL": fake.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }


PR_EVENT = {"pull_request": {"number": PR, "head": {"sha": HEAD}}, "repository": {"private": False}}


def run(options: PublishOptions, env: dict[str, str], client: Github | None = None) -> str:
    out = io.StringIO()
    assert publish(options, env, out, client=client) == 0
    return out.getvalue()


def client(fake: FakeGitHub, token: str = TOKEN) -> Github:
    return make_client(token, fake.url, backoff=0.0, write_interval=0.0)


def test_pull_request_comment_charts_summary_outputs(fake: FakeGitHub, report_dir: Path, tmp_path: Path) -> None:
    env = environ(tmp_path, fake, PR_EVENT)
    log = run(PublishOptions(report_dir=report_dir, key="tuning_specs/"), env, client(fake))
    (comment,) = fake.comments(REPO, PR)
    assert comment.body.startswith("<!-- inference-autotuner:sticky key=tuning_specs/ -->")
    assert f"https://raw.githubusercontent.com/{REPO}/" in comment.body
    assert f"/pr-{PR}/{HEAD}/smollm2-cpu/objective.png" in comment.body
    assert "llamacpp_server" in comment.body and "<details>" in comment.body
    assert (report_dir / COMMENT_FILE).read_text() == comment.body
    outputs = read_outputs(tmp_path / "output")
    assert outputs["verdict"] == "no-baseline" and outputs["failure"] == ""
    best = json.loads(outputs["best-config"])["smollm2-cpu"]
    assert best["config_id"] == "n-batch=2048,n-parallel=4,threads=2" and "--n-parallel 4" in best["command"]
    assert Path(outputs["report-path"]) == (report_dir / SUMMARY_FILE).resolve()
    summary = (tmp_path / "summary").read_text()
    assert "**Best config:**" in summary and "<!-- inference-autotuner" not in summary
    assert json.loads((report_dir / PR_FILE).read_text()) == {"number": PR, "head_sha": HEAD}
    assert "created comment" in log
    again = run(PublishOptions(report_dir=report_dir, key="tuning_specs/"), env, client(fake))
    assert len(fake.comments(REPO, PR)) == 1 and "updated comment" in again
    for text in (comment.body, summary, (tmp_path / "output").read_text(), log):
        assert TOKEN not in text


def test_private_repository_uses_mermaid_and_pushes_nothing(fake: FakeGitHub, report_dir: Path, tmp_path: Path) -> None:
    fake.repos[REPO].private = True
    env = environ(tmp_path, fake, {**PR_EVENT, "repository": {"private": True}})
    run(PublishOptions(report_dir=report_dir), env, client(fake))
    (comment,) = fake.comments(REPO, PR)
    assert "```mermaid" in comment.body and "raw.githubusercontent.com" not in comment.body
    assert "https://github.com/acme/serving/actions/runs/1234" in comment.body
    assert not [r for r in fake.requests if r.method == "PUT" or "/git/" in r.path]


def test_missing_permissions_are_named_and_the_summary_still_written(
    fake: FakeGitHub, report_dir: Path, tmp_path: Path
) -> None:
    readonly = "ghs_readonly_token_for_forks"
    fake.add_token(readonly, "github-actions[bot]", installation=True, pull_requests="read", contents="read")
    env = {**environ(tmp_path, fake, PR_EVENT), "GITHUB_TOKEN": readonly}
    log = run(PublishOptions(report_dir=report_dir), env, client(fake, readonly))
    summary = (tmp_path / "summary").read_text()
    assert "contents: write" in summary and "pull-requests: write" in summary
    assert "::warning" in log and readonly not in log + summary
    assert read_outputs(tmp_path / "output")["verdict"] == "no-baseline"
    assert fake.comments(REPO, PR) == []


def test_comment_off_writes_summary_and_outputs_only(fake: FakeGitHub, report_dir: Path, tmp_path: Path) -> None:
    env = environ(tmp_path, fake, PR_EVENT)
    run(PublishOptions(report_dir=report_dir, comment=False), env)
    assert fake.requests == []
    assert (tmp_path / "summary").read_text() and read_outputs(tmp_path / "output")["verdict"]
    assert (report_dir / PR_FILE).is_file()  # for the fork-safe workflow_run job


def test_workflow_run_believes_pr_json_only_for_the_measured_commit(
    fake: FakeGitHub, report_dir: Path, tmp_path: Path
) -> None:
    pr_file = tmp_path / "pr.json"
    pr_file.write_text(json.dumps({"number": PR, "head_sha": "1" * 40}))  # not the PR's head
    event = {"workflow_run": {"head_sha": "1" * 40, "html_url": "https://github.com/acme/serving/actions/runs/77"}}
    env = environ(tmp_path, fake, event, name="workflow_run")
    log = run(PublishOptions(report_dir=report_dir, pr_file=pr_file), env, client(fake))
    assert fake.comments(REPO, PR) == [] and "not the commit that was measured" in log
    pr_file.write_text(json.dumps({"number": PR, "head_sha": HEAD}))
    event["workflow_run"] = {"head_sha": HEAD, "html_url": "https://github.com/acme/serving/actions/runs/77"}
    env = environ(tmp_path, fake, event, name="workflow_run")
    run(PublishOptions(report_dir=report_dir, pr_file=pr_file), env, client(fake))
    (comment,) = fake.comments(REPO, PR)
    assert f"/pr-{PR}/{HEAD}/" in comment.body  # charts keyed by the PR's commit, not the base branch's
    assert "actions/runs/77" in comment.body  # the artifact lives in the tuning run


def test_verdict_from_comparison_json_and_the_job_fails(fake: FakeGitHub, report_dir: Path, tmp_path: Path) -> None:
    shutil.copy(FIXTURE, report_dir / "smollm2-cpu" / "baseline.json")
    comparison = {"mode": "stored", "verdict": "regressed", "threshold": 0.05, "confidence": 0.95}
    (report_dir / "smollm2-cpu" / "latest" / "comparison.json").write_text(json.dumps(comparison))
    env = environ(tmp_path, fake, PR_EVENT)
    log = run(PublishOptions(report_dir=report_dir, pytest_exit=1), env, client(fake))
    outputs = read_outputs(tmp_path / "output")
    assert outputs["verdict"] == "regressed" and "regressed" in outputs["failure"]
    assert "the job fails" in log
    (tmp_path / "output").write_text("")
    run(PublishOptions(report_dir=report_dir, pytest_exit=1, fail_on_regression=False), env, client(fake))
    assert read_outputs(tmp_path / "output")["failure"] == ""


def test_no_results_is_an_error_verdict(fake: FakeGitHub, tmp_path: Path) -> None:
    env = environ(tmp_path, fake, PR_EVENT)
    run(PublishOptions(report_dir=tmp_path / "empty", comment=False), env)
    outputs = read_outputs(tmp_path / "output")
    assert outputs["verdict"] == "error" and outputs["failure"]


@pytest.mark.parametrize("broken", ["{", '{"schema_version": 99}'])
def test_unreadable_results_are_reported_not_raised(fake: FakeGitHub, tmp_path: Path, broken: str) -> None:
    folder = tmp_path / "r" / "spec" / "latest"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(broken)
    env = environ(tmp_path, fake, PR_EVENT)
    run(PublishOptions(report_dir=tmp_path / "r", comment=False), env)
    assert "no results" in (tmp_path / "summary").read_text()


def test_the_command_line(fake: FakeGitHub, report_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from autotuner.cli import main

    for name, value in environ(tmp_path, fake, PR_EVENT).items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    code = main(["github", "publish", "--report-dir", str(report_dir), "--no-comment", "--pytest-exit", "0"], out)
    assert code == 0 and "verdict: no-baseline" in out.getvalue()
    assert fake.requests == []
    with pytest.raises(SystemExit):
        main(["github", "publish", "--fail-on-regression", "maybe"], io.StringIO())


def test_github_unreachable_still_writes_summary_and_outputs(report_dir: Path, tmp_path: Path) -> None:
    with FakeGitHub() as gone:
        url = gone.url  # a port nothing listens on once the server is closed
        env = environ(tmp_path, gone, PR_EVENT)
    env["GITHUB_API_URL"] = url
    unreachable = make_client(TOKEN, url, backoff=0.0, write_interval=0.0)
    log = run(PublishOptions(report_dir=report_dir), env, unreachable)
    assert "::warning" in log and TOKEN not in log
    assert read_outputs(tmp_path / "output")["verdict"] == "no-baseline"
    assert "**Best config:**" in (tmp_path / "summary").read_text()
