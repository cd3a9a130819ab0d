"""The reliability suite drives the harness in ``benchmarks/`` (which prints the figures); tests assert its rows."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


def unavailable(reason: str) -> None:
    """A scenario whose service is missing: skip locally, fail under CI=true (CI must not pass by testing nothing)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)
