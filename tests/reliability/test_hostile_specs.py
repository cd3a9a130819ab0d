"""Hundreds of malformed and hostile specs: a located error and exit 2, never a traceback, nothing run or written.

``benchmarks/hostile_specs.py`` generates the corpus and prints the counts per category and front door.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hostile_specs
import pytest

SCRIPT = Path(hostile_specs.__file__)


def test_every_spec_of_the_corpus_is_refused_or_inert_in_validate() -> None:
    """The whole corpus through ``autotuner validate`` (``cli.main``), in a child process whose address space is
    capped, so a memory bomb that gets through fails there instead of on this machine."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--in-process-only", "--json"], capture_output=True, text=True, timeout=600
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\n{report['runs']} hostile specs through `autotuner validate`")
    assert report["runs"] >= 400
    assert report["failures"] == [], json.dumps(report["failures"][:5], indent=2)
    assert not report["marker"]


@pytest.mark.slow
def test_a_sample_through_the_console_script_tune_and_pytest(tmp_path: Path) -> None:
    """Refused cases (one per category) through the real processes, and accepted hostile values that only a
    running study reaches: a config id printed with a forged workflow command in it, a model path that is not a
    model, an interpreter path with a shell command in it (the whole set: ``benchmarks/hostile_specs.py``)."""
    inert = ("log-env-parameter", "traversal-model-path", "shell-python-0")
    report = hostile_specs.run(tmp_path, in_process=False, per_category=1, inert=inert, through_pytest=2)
    print("\n" + report.summary())
    doors = {v.door for v in report.verdicts}
    assert {"autotuner tune"} <= doors
    assert report.failures() == [], report.summary()
    assert not report.marker.exists()


def test_the_judge_catches_what_it_must() -> None:
    case = hostile_specs.Case("c", "x", "name: x\n", "refused")
    assert hostile_specs.judge(case, "d", 2, "spec.yaml:1:1: name: bad\n", 0.1, "spec.yaml").ok
    assert not hostile_specs.judge(case, "d", 1, "spec.yaml:1:1: name: bad\n", 0.1, "spec.yaml").ok
    assert not hostile_specs.judge(case, "d", 2, "name is bad\n", 0.1, "spec.yaml").ok
    assert not hostile_specs.judge(case, "d", 2, "spec.yaml:9:1: x\n", 0.1, "spec.yaml").ok  # line beyond the file
    assert not hostile_specs.judge(case, "d", 2, "spec.yaml:1:1: x\nTraceback (most", 0.1, "spec.yaml").ok
    assert not hostile_specs.judge(case, "d", 2, "spec.yaml:1:1: x\n::error::y\n", 0.1, "spec.yaml").ok
