"""The composite action, run step by step as the runner would (tests/integration/action_runner.py), against the
fake GitHub (fake_github.py): inputs only through ``env:``, GITHUB_* variables, an event payload file,
GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, ``uses:`` steps recorded and checked rather than run.

- ``mode: publish`` on a rendered run (fast, no engine): the render, compare and publish steps for real.
- ``mode: tune`` on the embedded default (slow: a real llama.cpp engine, two trials, about a minute and a half):
  `pytest --tune` through the action, then the comment the fake received, the outputs, the job summary, the
  artifact's path, and that the token appears nowhere (files, logs, comment).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from autotuner.results import StudyResult

from .action_runner import ActionRun, run_action, runner_environ
from .fake_github import FakeGitHub

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "smollm2-cpu-results.json"
TOKEN = "ghs_TOKENthatMustNeverLeak0123456789"
REPO = "acme/serving"
PR = 42
HEAD = "beef" * 10


def _workspace(tmp_path: Path, fake: FakeGitHub) -> tuple[Path, dict[str, str], dict[str, str]]:
    fake.add_token(TOKEN, "github-actions[bot]", installation=True)
    fake.add_repo(REPO)
    fake.add_pull(REPO, PR, HEAD)
    workspace = tmp_path / "workspace"
    (workspace / "tuning_specs").mkdir(parents=True)
    shutil.copy(ROOT / "tuning_specs" / "smollm2-cpu.yaml", workspace / "tuning_specs")
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "action": "synchronize",
                "number": PR,
                "pull_request": {"number": PR, "head": {"sha": HEAD, "ref": "feature"}, "base": {"ref": "main"}},
                "repository": {"full_name": REPO, "private": False},
            }
        )
    )
    (tmp_path / "runner-temp").mkdir()
    environ = runner_environ(
        os.environ,
        GITHUB_REPOSITORY=REPO,
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_EVENT_PATH=str(event),
        GITHUB_SHA="0" * 40,
        GITHUB_REF="refs/pull/42/merge",
        GITHUB_REF_NAME="42/merge",
        GITHUB_RUN_ID="555",
        GITHUB_WORKSPACE=str(workspace),
        GITHUB_API_URL=fake.url,
        GITHUB_SERVER_URL="https://github.com",
        RUNNER_TEMP=str(tmp_path / "runner-temp"),
        AUTOTUNER_STATE_DIR=str(tmp_path / "state"),
    )
    github = {"token": TOKEN, "repository": REPO, "event_name": "pull_request", "sha": "0" * 40}
    return workspace, environ, github


def _no_token_anywhere(run: ActionRun, *folders: Path) -> None:
    assert TOKEN not in run.text()
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert TOKEN.encode() not in path.read_bytes(), path


def test_publish_mode_renders_compares_and_comments(tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        workspace, environ, github = _workspace(tmp_path, fake)
        run_dir = workspace / "pr-results" / "smollm2-cpu" / "20261122-120000-abcdef"
        run_dir.mkdir(parents=True)
        shutil.copy(FIXTURE, run_dir / "results.json")
        (run_dir.parent / "latest").symlink_to(run_dir.name)
        baselines = workspace / "reports" / "smollm2-cpu"
        baselines.mkdir(parents=True)
        shutil.copy(FIXTURE, baselines / "baseline.json")
        run = run_action(
            ROOT,
            {
                "mode": "publish",
                "python": sys.executable,
                "install": "false",
                "report-dir": "pr-results",
                "github-token": TOKEN,
                "specs": "tuning_specs/",
            },
            environ,
            workspace=workspace,
            github=github,
        )
        assert not run.failed, run.text()
        assert [s.name for s in run.steps if s.kind == "skipped"] == [
            "Set up Python",
            "Tune (pytest --tune)",
            "Update baselines",
            "Upload results and reports",
        ]
        assert (run_dir / "report.md").is_file() and (run_dir / "charts" / "objective.png").is_file()
        (comment,) = fake.comments(REPO, PR)
        assert comment.body.startswith("<!-- inference-autotuner:sticky key=tuning_specs/ -->")
        assert run.outputs["verdict"] in ("unchanged", "inconclusive", "not-compared"), run.text()
        assert "**Verdict vs main:**" in comment.body and "**Recommended config:** unchanged" in comment.body
        assert f"/pr-{PR}/{HEAD}/smollm2-cpu/" in comment.body
        _no_token_anywhere(run, workspace)


@pytest.mark.slow
def test_tune_mode_on_the_embedded_default(tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        workspace, environ, github = _workspace(tmp_path, fake)
        run = run_action(
            ROOT,
            {
                "python": sys.executable,
                "install": "false",
                "specs": "tuning_specs/smollm2-cpu.yaml",
                "pytest-args": "--tune-max-trials 2 -v",
                "github-token": TOKEN,
                "baseline": "update",  # as on a push to main: the run also writes reports/<spec>/baseline.json
            },
            environ,
            workspace=workspace,
            github=github,
            timeout=1200,
        )
        text = run.text()
        tune = next(s for s in run.steps if s.name == "Tune (pytest --tune)")
        assert tune.outcome == "success" and tune.outputs["exit-code"] in ("0", "1"), text
        assert "smollm2-cpu[verdict]" in tune.stdout, text

        (comment,) = fake.comments(REPO, PR)
        body = comment.body
        assert body.startswith("<!-- inference-autotuner:sticky key=tuning_specs/smollm2-cpu.yaml -->"), body
        assert "### smollm2-cpu" in body and "**Trials:**" in body
        if run.outputs["verdict"] != "no-feasible-config":
            assert "**Best config:**" in body
            assert "**Launch the best config:**" in body and "autotuner.engines.llamacpp_server" in body
        assert "<details><summary>Trials, best first" in body
        assert len(body) <= 65536

        assert run.outputs["verdict"] in ("no-baseline", "no-feasible-config"), text
        best = json.loads(run.outputs["best-config"])
        assert set(best) == {"smollm2-cpu"}
        assert Path(run.outputs["report-path"]).is_file()
        assert run.outputs["comment-url"].endswith(f"/pull/{PR}#issuecomment-{comment.id}")
        summary = run.summary
        assert "### smollm2-cpu" in summary and len(summary.encode()) <= 1024 * 1024

        upload = next(s for s in run.steps if s.uses.startswith("actions/upload-artifact"))
        uploaded = workspace / upload.with_["path"]
        assert (uploaded / "smollm2-cpu" / "latest" / "results.json").is_file()
        assert (uploaded / "pr.json").is_file() and (uploaded / "autotuner-comment.md").read_text() == body
        baseline = workspace / "reports" / "smollm2-cpu" / "baseline.json"
        assert baseline.is_file() == (run.outputs["verdict"] != "no-feasible-config"), text
        verdict = run.steps[-1]
        assert verdict.outcome == ("failure" if run.outputs["verdict"] == "no-feasible-config" else "success")
        _no_token_anywhere(run, workspace, tmp_path / "runner-temp")
        StudyResult.read(uploaded / "smollm2-cpu" / "latest" / "results.json")


def test_render_step_skips_a_broken_report_without_failing(tmp_path: Path) -> None:
    """A results file the renderer cannot read leaves a warning; publish still writes the summary and outputs."""
    with FakeGitHub() as fake:
        workspace, environ, github = _workspace(tmp_path, fake)
        broken = workspace / "autotuner-reports" / "gpu-spec" / "latest"
        broken.mkdir(parents=True)
        (broken / "results.json").write_text("{not json")
        run = run_action(
            ROOT,
            {"mode": "publish", "python": sys.executable, "install": "false", "github-token": TOKEN},
            environ,
            workspace=workspace,
            github=github,
        )
        assert run.outputs["verdict"] == "error"
        assert run.steps[-1].outcome == "failure" and "no results" in run.steps[-1].stdout
        assert "::warning" in run.text()
        assert "💥" in fake.comments(REPO, PR)[0].body


def test_invalid_inputs_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        workspace, environ, github = _workspace(tmp_path, fake)
        run = run_action(
            ROOT,
            {"mode": "publish", "python": sys.executable, "install": "false", "comment": "yes"},
            environ,
            workspace=workspace,
            github=github,
        )
        assert run.steps[0].outcome == "failure" and "comment must be true or false" in run.steps[0].stdout
        assert fake.requests == []
