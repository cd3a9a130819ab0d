"""genai-bench tasks and traffic scenarios, checked by genai-bench's own grammar when the spec is read.

The original autotuner split ``D(100,100)`` on its comma and sent genai-bench ``D(100`` and ``100)``; a
scenario genai-bench rejects costs a whole trial of GPU time to discover. So scenarios are validated with
genai-bench's ``Scenario.validate`` (the code its CLI runs), plus the task/scenario pairing its samplers expect.
"""

from __future__ import annotations

import re

# genai-bench 0.0.5 `--task` choices (click.Choice in genai_bench/cli/option_groups.py); a unit test keeps this
# list equal to the installed genai-bench's, so it cannot drift silently.
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


def validate_scenario(scenario: str, task: str) -> str:
    """Return the scenario unchanged if genai-bench accepts it for ``task``; raise ``ValueError`` otherwise."""
    from genai_bench.scenarios.base import Scenario  # genai-bench's own parser; imported lazily (~0.3 s)

    if not isinstance(scenario, str):
        raise ValueError(f"a scenario is a string such as D(64,64), got {type(scenario).__name__}")
    if re.search(r"\s", scenario):
        raise ValueError(f"scenario {scenario!r} contains spaces, which genai-bench rejects: write it without them")
    try:
        Scenario.validate(scenario)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"genai-bench rejects scenario {scenario!r}: {exc}") from None
    kind = "dataset" if scenario == "dataset" else scenario[0]
    allowed = _TYPES_BY_TASK.get(task)
    if kind != "dataset" and allowed is not None and kind not in allowed:
        examples = ", ".join(_EXAMPLES[k] for k in sorted(allowed))
        raise ValueError(f"scenario {scenario!r} does not fit task {task!r}: use e.g. {examples}")
    return scenario
