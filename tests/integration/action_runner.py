"""Runs a composite action's steps the way the GitHub Actions runner does, on this machine.

What is emulated (from the runner's documented behaviour): inputs with their defaults, passed only through the
expressions in each step's ``env:`` (the scripts never see ``${{ }}`` text); ``${{ }}`` expressions and ``if:``
conditions over ``inputs``, ``steps.<id>.outputs``, ``github`` and ``runner`` with ``==``, ``!=``, ``&&``,
``||``, ``!``, parentheses, string literals and ``always()``/``success()``/``failure()`` (GitHub's semantics:
``||`` and ``&&`` return an operand, ``==`` compares strings case-insensitively, a condition without a status
function implies ``success()``); ``shell: bash`` as ``bash --noprofile --norc -eo pipefail <file>``; a fresh
``GITHUB_OUTPUT`` file per step parsed into ``steps.<id>.outputs``; ``GITHUB_STEP_SUMMARY`` per step, collected;
``GITHUB_ACTION_PATH``; the action's ``outputs`` evaluated at the end. ``uses:`` steps are not run: each is
recorded with its evaluated ``with:`` (the test checks, e.g., that the artifact's ``path`` exists) and gets the
outputs the test provides.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autotuner.github.summary import read_outputs

_TOKEN = re.compile(
    r"\s*(\|\||&&|==|!=|!|\(|\)|'(?:[^']|'')*'|[A-Za-z_][A-Za-z0-9_.\-]*\(\)|[A-Za-z_][A-Za-z0-9_.\-]*)"
)


@dataclass
class StepRun:
    name: str
    kind: str  # "run", "uses" or "skipped"
    outcome: str = "success"
    stdout: str = ""
    stderr: str = ""
    uses: str = ""
    with_: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]

    @property
    def failed(self) -> bool:
        return any(s.outcome == "failure" for s in self.steps)

    @property
    def summary(self) -> str:
        return "".join(s.summary for s in self.steps)

    def text(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}]\n{s.stdout}\n{s.stderr}" for s in self.steps)


class Expressions:
    """A small evaluator for the expressions the action uses (see the module docstring)."""

    def __init__(self, contexts: Mapping[str, Any], failed: Callable[[], bool]) -> None:
        self.contexts = contexts
        self.failed = failed

    def interpolate(self, text: str) -> str:
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _string(self.evaluate(m.group(1))), text)

    def condition(self, text: str | bool | None) -> bool:
        if text is None:
            return not self.failed()
        if isinstance(text, bool):
            return text and not self.failed()
        expr = text.strip()
        if expr.startswith("${{") and expr.endswith("}}"):
            expr = expr[3:-2]
        if not re.search(r"\b(always|success|failure|cancelled)\(\)", expr):
            expr = f"success() && ({expr})"
        return _truthy(self.evaluate(expr))

    def evaluate(self, expr: str) -> Any:
        tokens = [t for t in _TOKEN.findall(expr) if t]
        if "".join(tokens).replace(" ", "") != expr.replace(" ", ""):
            raise ValueError(f"unsupported expression: {expr!r}")
        value, rest = self._or(tokens)
        if rest:
            raise ValueError(f"unexpected {rest[0]!r} in {expr!r}")
        return value

    def _or(self, t: list[str]) -> tuple[Any, list[str]]:
        left, t = self._and(t)
        while t and t[0] == "||":
            right, t = self._and(t[1:])
            left = left if _truthy(left) else right
        return left, t

    def _and(self, t: list[str]) -> tuple[Any, list[str]]:
        left, t = self._cmp(t)
        while t and t[0] == "&&":
            right, t = self._cmp(t[1:])
            left = right if _truthy(left) else left
        return left, t

    def _cmp(self, t: list[str]) -> tuple[Any, list[str]]:
        left, t = self._unary(t)
        while t and t[0] in ("==", "!="):
            op = t[0]
            right, t = self._unary(t[1:])
            same = _string(left).lower() == _string(right).lower()
            left = same if op == "==" else not same
        return left, t

    def _unary(self, t: list[str]) -> tuple[Any, list[str]]:
        if t[0] == "!":
            value, rest = self._unary(t[1:])
            return not _truthy(value), rest
        if t[0] == "(":
            value, rest = self._or(t[1:])
            return value, rest[1:]
        token, rest = t[0], t[1:]
        if token.startswith("'"):
            return token[1:-1].replace("''", "'"), rest
        if token in ("true", "false"):
            return token == "true", rest
        if token.endswith("()"):
            name = token[:-2]
            failed = self.failed()
            return {"always": True, "success": not failed, "failure": failed, "cancelled": False}[name], rest
        value: Any = self.contexts
        for part in token.split("."):
            value = value.get(part, "") if isinstance(value, Mapping) else ""
        return value, rest


def _truthy(value: Any) -> bool:
    return bool(value) and value != "0"


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def run_action(
    action_dir: Path,
    inputs: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    workspace: Path,
    github: Mapping[str, str],
    uses_outputs: Mapping[str, Mapping[str, str]] | None = None,
    timeout: float = 900,
) -> ActionRun:
    """Run ``action_dir/action.yml`` with ``inputs`` (``with:``) in ``workspace`` under ``environ``."""
    spec = yaml.safe_load((action_dir / "action.yml").read_text(encoding="utf-8"))
    steps_ctx: dict[str, dict[str, Any]] = {}
    runs: list[StepRun] = []
    contexts: dict[str, Any] = {
        "github": {**github, "action_path": str(action_dir)},
        "runner": {"temp": environ.get("RUNNER_TEMP", ""), "os": "Linux"},
        "steps": steps_ctx,
    }
    expr = Expressions(contexts, lambda: any(r.outcome == "failure" for r in runs))
    resolved: dict[str, str] = {}
    for name, declared in (spec.get("inputs") or {}).items():
        default = str(declared.get("default", "")) if declared else ""
        resolved[name] = inputs.get(name, expr.interpolate(default))
    unknown = set(inputs) - set(resolved)
    if unknown:
        raise ValueError(f"inputs the action does not declare: {sorted(unknown)}")
    contexts["inputs"] = resolved
    for index, step in enumerate(spec["runs"]["steps"]):
        name = step.get("name", f"step {index}")
        if not expr.condition(step.get("if")):
            runs.append(StepRun(name, "skipped", outcome="skipped"))
            if step.get("id"):
                steps_ctx[step["id"]] = {"outputs": {}, "outcome": "skipped"}
            continue
        if "uses" in step:
            with_ = {k: expr.interpolate(str(v)) for k, v in (step.get("with") or {}).items()}
            outputs = dict((uses_outputs or {}).get(step["uses"], {}))
            runs.append(StepRun(name, "uses", uses=step["uses"], with_=with_, outputs=outputs))
        else:
            runs.append(_run_step(step, name, expr, environ, action_dir, workspace, timeout))
        if step.get("id"):
            steps_ctx[step["id"]] = {"outputs": runs[-1].outputs, "outcome": runs[-1].outcome}
    outputs = {k: expr.interpolate(str(v.get("value", ""))) for k, v in (spec.get("outputs") or {}).items()}
    return ActionRun(runs, outputs)


def _run_step(
    step: Mapping[str, Any],
    name: str,
    expr: Expressions,
    environ: Mapping[str, str],
    action_dir: Path,
    workspace: Path,
    timeout: float,
) -> StepRun:
    if step.get("shell") != "bash":
        raise ValueError(f"{name}: only `shell: bash` is emulated")
    with tempfile.TemporaryDirectory(prefix="step-") as scratch:
        folder = Path(scratch)
        script, output, summary = folder / "script.sh", folder / "output", folder / "summary"
        script.write_text(step["run"], encoding="utf-8")
        output.write_text("")
        summary.write_text("")
        env = {
            **environ,
            **{k: expr.interpolate(str(v)) for k, v in (step.get("env") or {}).items()},
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_ACTION_PATH": str(action_dir),
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return StepRun(
            name,
            "run",
            outcome="success" if done.returncode == 0 else "failure",
            stdout=done.stdout,
            stderr=done.stderr,
            outputs=read_outputs(output),
            summary=summary.read_text(encoding="utf-8"),
        )


def runner_environ(base: Mapping[str, str], **variables: str) -> dict[str, str]:
    """``base`` without the real runner's variables (a test inside a real Actions job must not leak into ours)."""
    kept = {k: v for k, v in base.items() if not k.startswith(("GITHUB_", "RUNNER_", "INPUT_", "ACTIONS_"))}
    loopback = "127.0.0.1,localhost"  # the fake GitHub is on loopback: never through a proxy
    for name in ("no_proxy", "NO_PROXY"):
        kept[name] = f"{kept[name]},{loopback}" if kept.get(name) else loopback
    return {**kept, "GITHUB_ACTIONS": "true", **variables}
