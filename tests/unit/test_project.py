"""The package as installed: entry points, the pytest plugin's registration, README/CI agreement, code quality."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_console_script_and_plugin_entry_points() -> None:
    entry_points = importlib.metadata.distribution("inference-autotuner").entry_points
    found = {(ep.group, ep.name): ep.value for ep in entry_points}
    assert found[("console_scripts", "autotuner")] == "autotuner.entry:main"
    assert found[("pytest11", "autotuner")] == "autotuner.pytest_plugin"


def test_plugin_is_registered_and_pytest_behaves_as_without_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    assert 1 + 1 == 2\n")
    pytester.makefile(".yaml", spec="name: not-collected-without-tune\n")
    result = pytester.runpytest_subprocess("--trace-config", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*autotuner*pytest_plugin*"])
    result.assert_outcomes(passed=1)
    without = pytester.runpytest_subprocess("-p", "no:autotuner", "-p", "no:cacheprovider")
    without.assert_outcomes(passed=1)


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.+?)\n```", readme, flags=re.S)
    assert "autotuner validate tuning_specs/" in blocks[0] or "autotuner tune" in blocks[0]
    assert "pytest" in blocks[1]
    marker = readme.index("<!-- test-command")
    assert readme.index(blocks[1]) > marker > readme.index(blocks[0])


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    expected = re.findall(r"```bash\n(.+?)\n```", readme, flags=re.S)[1]
    script = (ROOT / ".ci" / "run").read_text()
    awk = re.search(r"test_command=\$\((awk .+? README\.md)\)", script)
    assert awk is not None
    extracted = subprocess.run(["bash", "-c", awk.group(1)], cwd=ROOT, capture_output=True, text=True, check=True)
    assert extracted.stdout.strip() == expected


def test_ruff_is_clean() -> None:
    command = [sys.executable, "-m", "ruff", "check", "autotuner", "tests", "benchmarks"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    command = [sys.executable, "-m", "mypy", "autotuner", "benchmarks"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
