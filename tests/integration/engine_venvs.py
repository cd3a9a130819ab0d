"""The engines that live in their own virtual environments (made by .ci/vllm-env.sh and .ci/sglang-env.sh).

Tests of those engines skip with the command to run when the venv is missing, except in CI (``CI=true``), where a
missing venv fails the test: .ci/run makes the venvs, and a tier that silently skipped would prove nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autotuner.engines.flags import engine_python

SCRIPTS = {"vllm": ".ci/vllm-env.sh", "sglang": ".ci/sglang-env.sh"}


def unavailable(runtime: str, reason: str) -> None:
    """Skip (or fail in CI) because ``runtime``'s environment is missing or broken."""
    message = f"{reason}; make it with `bash {SCRIPTS[runtime]}` (or set AUTOTUNER_{runtime.upper()}_PYTHON)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI runs the {runtime} tier: {message}", pytrace=False)
    pytest.skip(message)


def require_python(runtime: str) -> str:
    """The interpreter that has ``runtime`` installed, as the tool itself finds it."""
    python = engine_python(runtime)
    if python is None or not Path(python).exists():
        unavailable(runtime, f"no {runtime} interpreter found")
    assert python is not None
    return python
