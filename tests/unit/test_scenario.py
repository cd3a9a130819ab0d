"""Scenario validation agrees with the installed genai-bench, which is only ever run in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autotuner.scenario import FALLBACK_PATTERNS, TASKS, _scenarios_dir, read_patterns, validate_scenario

SCENARIOS = [
    "D(64,64)",
    "D(100,1000)",
    "N(480,240)/(300,150)",
    "U(50,100)/(100,200)",
    "U(50,100)",
    "E(64)",
    "R(64,8)",
    "A(100)",
    "I(512,512)",
    "I(512,512,2)",
    "dataset",
    "D(64)",
    "D(64,64,64)",
    "D(64, 64)",
    "d(64,64)",
    "X(1)",
    "N(480,240)",
    "D(a,b)",
    "D(-1,5)",
    "",
    "(64,64)",
    "D(64,64)/(1,1)",
    "datasets",
    "U(1,2)/(3)",
    "D(1.5,2)",
]

GENAI_BENCH_CHECK = """
import json, sys
from genai_bench.scenarios.base import Scenario
from genai_bench.cli.cli import benchmark
out = {"tasks": list(next(p for p in benchmark.params if p.name == "task").type.choices), "accepted": {}}
for s in json.loads(sys.argv[1]):
    try:
        Scenario.validate(s)
        out["accepted"][s] = True
    except Exception:
        out["accepted"][s] = False
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def genai_bench() -> dict[str, object]:
    """What the real genai-bench says, asked in a subprocess (its import monkey-patches the whole process)."""
    result = subprocess.run(
        [sys.executable, "-c", GENAI_BENCH_CHECK, json.dumps(SCENARIOS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line is not None, result.stdout + result.stderr
    return json.loads(line[len("RESULT") :])  # type: ignore[no-any-return]


def test_tasks_match_genai_bench(genai_bench: dict[str, object]) -> None:
    assert list(TASKS) == genai_bench["tasks"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_grammar_matches_genai_bench(scenario: str, genai_bench: dict[str, dict[str, bool]]) -> None:
    ours = True
    try:
        validate_scenario(
            scenario,
            "text-to-text"
            if scenario[:1] in "DNU"
            else "image-text-to-text"
            if scenario[:1] == "I"
            else "text-to-embeddings"
            if scenario[:1] == "E"
            else "text-to-rerank"
            if scenario[:1] == "R"
            else "text-to-speech",
        )
    except ValueError:
        ours = False
    assert ours == genai_bench["accepted"][scenario]


def test_installed_patterns_equal_the_fallback() -> None:
    folder = _scenarios_dir()
    assert folder is not None
    assert read_patterns(folder) == FALLBACK_PATTERNS


def test_patterns_are_read_without_importing_genai_bench() -> None:
    code = (
        "import sys; from autotuner.scenario import validate_scenario; validate_scenario('D(1,1)', 'text-to-text'); "
        "print('genai_bench' in sys.modules, 'gevent' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_patterns_from_a_source_tree(tmp_path: Path) -> None:
    (tmp_path / "base.py").write_text('from enum import Enum\nclass T(Enum):\n    Z = "Z"\n')
    (tmp_path / "z.py").write_text(
        'class ZScenario:\n    scenario_type = T.Z\n    validation_pattern = r"^Z\\(\\d+\\)$"\n'
    )
    assert read_patterns(tmp_path) == {"Z": r"^Z\(\d+\)$"}


def test_dataset_fits_every_task() -> None:
    for task in TASKS:
        assert validate_scenario("dataset", task) == "dataset"
