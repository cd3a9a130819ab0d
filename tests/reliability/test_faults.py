"""Faults injected into real ``autotuner tune`` runs: each must keep every finished trial and leave nothing running.

The scenarios live in ``benchmarks/faults.py`` (``python benchmarks/faults.py`` prints the whole table, including
the scenarios left out here because an existing test covers them or they take minutes: every tuner signal at
every stage, the Docker daemon stopped mid-run, genai-bench exiting non-zero).
"""

from __future__ import annotations

from pathlib import Path

import faults
import pytest

from .conftest import unavailable

pytestmark = pytest.mark.slow

QUICK = [name for name, (_scenario, quick) in faults.SCENARIOS.items() if quick]


@pytest.mark.parametrize("name", QUICK)
def test_fault_is_survived(name: str, tmp_path: Path) -> None:
    rows = faults.run_scenarios([name], tmp_path)
    print("\n" + faults.table(rows))
    skipped = [r for r in rows if r.outcome.startswith("skipped")]
    if skipped:
        unavailable(skipped[0].outcome)
    assert rows
    for row in rows:
        assert (row.lost, row.left) == (0, 0), faults.table([row])
        assert row.ok, faults.table([row])


def test_a_row_that_misses_fails() -> None:
    """The table's verdict is not decorative: a lost trial, a leftover or a missed expectation fails a row."""
    assert faults.Row("x", "y", 0, 0).ok
    assert not faults.Row("x", "y", 1, 0).ok
    assert not faults.Row("x", "y", 0, 1).ok
    assert not faults.Row("x", "y", 0, 0, ["exit 1"]).ok


def test_an_interrupt_while_a_finished_trial_is_stored_keeps_it(tmp_path: Path) -> None:
    (row,) = faults.run_scenarios(["signal-while-storing"], tmp_path)
    print("\n" + faults.table([row]))
    assert row.ok, faults.table([row])
