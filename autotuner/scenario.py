"""genai-bench tasks and traffic scenarios, checked by genai-bench's own grammar when the spec is read.

The original autotuner split ``D(100,100)`` on its comma and sent genai-bench ``D(100`` and ``100)``; a
scenario genai-bench rejects costs a whole trial of GPU time to discover. So scenarios are validated against
the ``validation_pattern`` of each ``Scenario`` class of the installed genai-bench, with the same rules its
``Scenario.validate`` applies (leading type token, registry lookup, ``re.match`` of the pattern).

Never ``import genai_bench`` in the tuner's process: its ``__init__`` runs ``gevent.monkey.patch_all()``, which
rewires threading, sockets, ssl and subprocess for the whole process (and breaks e.g. trio-based imports). The
patterns are therefore read from genai-bench's source files with ``ast``, without executing them. Where
genai-bench is not installed, the patterns of genai-bench 0.0.5 below are used; a test checks that both agree with
the installed genai-bench, run in its own process.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

# genai-bench 0.0.5 `--task` choices (click.Choice in genai_bench/cli/option_groups.py); a test keeps this list
# equal to the installed genai-bench's, so it cannot drift silently.
TASKS: tuple[str, ...] = (
    "text-to-text",
    "text-to-image",
    "text-to-embeddings",
    "text-to-rerank",
    "text-to-speech",
    "image-text-to-text",
    "image-to-embeddings",
)

# Which scenario types each task's sampler understands (genai-bench's default scenarios per task, plus the text
# distributions for text-to-text). `dataset` means "replay the dataset as is" and fits every task.
_TYPES_BY_TASK: dict[str, frozenset[str]] = {
    "text-to-text": frozenset("DNU"),
    "text-to-image": frozenset("DNU"),
    "text-to-embeddings": frozenset("E"),
    "text-to-rerank": frozenset("R"),
    "text-to-speech": frozenset("A"),
    "image-text-to-text": frozenset("I"),
    "image-to-embeddings": frozenset("I"),
}

_EXAMPLES = {
    "D": "D(64,64)",
    "N": "N(480,240)/(300,150)",
    "U": "U(50,100)/(100,200)",
    "E": "E(64)",
    "R": "R(64,8)",
    "A": "A(100)",
    "I": "I(512,512)",
}

# genai-bench 0.0.5's patterns, used only when genai-bench is not installed where the tuner runs.
FALLBACK_PATTERNS: dict[str, str] = {
    "dataset": r"^dataset$",
    "N": r"^N\(\d+,\d+\)\/\(\d+,\d+\)$",
    "U": r"^U\(\d+,\d+\)(?:\/\(\d+,\d+\))?$",
    "D": r"^D\(\d+,\d+\)$",
    "E": r"^E\(\d+\)$",
    "R": r"^R\(\d+,\d+\)$",
    "A": r"^A\(\d+\)$",
    "I": r"^I\(\d+,\d+(?:,\d+)?\)$",
}


def _scenarios_dir() -> Path | None:
    spec = importlib.util.find_spec("genai_bench")  # finds the package without executing its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "scenarios"
    return folder if folder.is_dir() else None


def read_patterns(folder: Path) -> dict[str, str]:
    """Scenario type token -> validation pattern, read from genai-bench's scenario modules without importing them."""
    enum_values: dict[tuple[str, str], str] = {}
    classes: list[tuple[ast.expr, str]] = []
    for file in sorted(folder.glob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            scenario_type: ast.expr | None = None
            pattern: str | None = None
            for item in node.body:
                if not (isinstance(item, ast.Assign) and len(item.targets) == 1):
                    continue
                target = item.targets[0]
                if not isinstance(target, ast.Name):
                    continue
                if isinstance(item.value, ast.Constant) and isinstance(item.value.value, str):
                    enum_values[(node.name, target.id)] = item.value.value
                    if target.id == "validation_pattern":
                        pattern = item.value.value
                if target.id == "scenario_type":
                    scenario_type = item.value
            if scenario_type is not None and pattern is not None:
                classes.append((scenario_type, pattern))
    patterns: dict[str, str] = {}
    for scenario_type, pattern in classes:
        if isinstance(scenario_type, ast.Attribute) and isinstance(scenario_type.value, ast.Name):
            token = enum_values.get((scenario_type.value.id, scenario_type.attr))
            if token:
                patterns[token] = pattern
    return patterns


@functools.lru_cache(maxsize=1)
def scenario_patterns() -> dict[str, str]:
    """The installed genai-bench's patterns, or the 0.0.5 fallback when it is absent or unreadable."""
    folder = _scenarios_dir()
    if folder is not None:
        try:
            patterns = read_patterns(folder)
        except (OSError, SyntaxError, ValueError):
            patterns = {}
        if patterns:
            return patterns
    return dict(FALLBACK_PATTERNS)


def validate_scenario(scenario: str, task: str) -> str:
    """Return the scenario unchanged if genai-bench accepts it for ``task``; raise ``ValueError`` otherwise."""
    if not isinstance(scenario, str):
        raise ValueError(f"a scenario is a string such as D(64,64), got {type(scenario).__name__}")
    if re.search(r"\s", scenario):
        raise ValueError(f"scenario {scenario!r} contains spaces, which genai-bench rejects: write it without them")
    patterns = scenario_patterns()
    match = re.match(r"^([A-Za-z]+)", scenario)
    token = match.group(1) if match else scenario[:1]
    if token not in patterns:
        raise ValueError(
            f"genai-bench rejects scenario {scenario!r}: unknown type {token!r} "
            f"(types: {', '.join(sorted(patterns))}; e.g. D(64,64), N(480,240)/(300,150))"
        )
    if not re.match(patterns[token], scenario):
        example = _EXAMPLES.get(token, token)
        raise ValueError(f"genai-bench rejects scenario {scenario!r}: expected the form {example}")
    allowed = _TYPES_BY_TASK.get(task)
    if token != "dataset" and allowed is not None and token not in allowed:
        examples = ", ".join(_EXAMPLES[k] for k in sorted(allowed))
        raise ValueError(f"scenario {scenario!r} does not fit task {task!r}: use e.g. {examples}")
    return scenario
