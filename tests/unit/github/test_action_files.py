"""action.yml and the example workflows against GitHub's JSON schemas (SchemaStore's, as vendored by
check-jsonschema), their shell against shellcheck, and the rule that inputs reach scripts only through ``env:``."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((ROOT / "examples" / "workflows").glob("*.yml"))
HOOKS = sorted((ROOT / "action" / "hooks").glob("*.sh"))


def schema(name: str) -> dict[str, Any]:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (the `test` extra) vendors the schemas")
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(f"{name}.json").read_text("utf-8")
    return dict(json.loads(text))


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as a boolean; GitHub reads it as the string "on"
        data["on"] = data.pop(True)
    return data


def test_action_matches_the_schema() -> None:
    jsonschema.validate(load(ROOT / "action.yml"), schema("github-actions"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_match_the_schema(path: Path) -> None:
    jsonschema.validate(load(path), schema("github-workflows"))


def test_examples_are_not_workflows_of_this_repository() -> None:
    assert WORKFLOWS and not any((ROOT / ".github" / "workflows" / p.name).exists() for p in WORKFLOWS)


def run_steps() -> list[tuple[str, str]]:
    steps = [
        (f"action.yml: {s.get('name')}", s["run"]) for s in load(ROOT / "action.yml")["runs"]["steps"] if "run" in s
    ]
    for path in WORKFLOWS:
        for job in load(path)["jobs"].values():
            steps += [(f"{path.name}: {s.get('name')}", s["run"]) for s in job.get("steps", []) if "run" in s]
    return steps


def test_inputs_reach_scripts_only_through_env() -> None:
    for name, script in run_steps():
        assert "${{" not in script, f"{name}: an expression pasted into shell text"
    for step in load(ROOT / "action.yml")["runs"]["steps"]:
        for value in (step.get("env") or {}).values():
            assert str(value).startswith("${{") or str(value) == "", value


def test_every_input_is_used_and_every_output_set() -> None:
    action = load(ROOT / "action.yml")
    text = (ROOT / "action.yml").read_text()
    for name in action["inputs"]:
        assert f"inputs.{name} " in text or f"inputs.{name}}}" in text or f"inputs.{name}\n" in text, name
    for name, output in action["outputs"].items():
        assert output["value"].startswith("${{ steps.publish.outputs."), name


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt install shellcheck)")
@pytest.mark.parametrize("target", ["steps", *[p.name for p in HOOKS]])
def test_shellcheck(target: str, tmp_path: Path) -> None:
    if target == "steps":
        scripts = [(name, "#!/usr/bin/env bash\n" + text) for name, text in run_steps()]
    else:
        scripts = [(target, (ROOT / "action" / "hooks" / target).read_text())]
    for name, text in scripts:
        file = tmp_path / "script.sh"
        file.write_text(text)
        done = subprocess.run(
            ["shellcheck", "-s", "bash", "-x", "-P", str(ROOT / "action" / "hooks"), str(file)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, f"{name}:\n{done.stdout}"
