"""The runner emulator's expressions behave as GitHub's do for the forms action.yml uses (so the action test
exercises the real step conditions, not a lenient imitation)."""

from __future__ import annotations

import pytest

from tests.integration.action_runner import Expressions

CONTEXTS = {
    "inputs": {"mode": "tune", "baseline": "update", "python": "python3"},
    "steps": {"resolve": {"outputs": {"setup-version": ""}}, "setup-python": {"outputs": {}}},
    "github": {"token": "t0ken"},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("inputs.mode == 'tune'", True),
        ("inputs.mode == 'TUNE'", True),  # string comparison ignores case
        ("inputs.mode == 'publish'", False),
        ("steps.resolve.outputs.setup-version != ''", False),
        ("inputs.mode == 'tune' && inputs.baseline == 'update'", True),
        ("inputs.mode == 'tune' && !(inputs.baseline == 'update')", False),
        ("always()", True),
        (None, True),
    ],
)
def test_conditions(condition: str | None, expected: bool) -> None:
    assert Expressions(CONTEXTS, lambda: False).condition(condition) is expected


def test_failure_skips_steps_without_a_status_function() -> None:
    failed = Expressions(CONTEXTS, lambda: True)
    assert not failed.condition("inputs.mode == 'tune'") and failed.condition("always()")


def test_interpolation_and_or_fallback() -> None:
    e = Expressions(CONTEXTS, lambda: False)
    assert e.interpolate("${{ steps.setup-python.outputs.python-path || inputs.python }}") == "python3"
    assert e.interpolate("a ${{ github.token }} b") == "a t0ken b"
    with pytest.raises(ValueError):
        e.evaluate("inputs.mode ~ 'x'")
