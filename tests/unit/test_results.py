"""results.json: a versioned schema written atomically and read back identically."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from autotuner.results import SCHEMA_VERSION, LevelRecord, ObjectiveRecord, Stage, StudyResult, TrialRecord


def study() -> StudyResult:
    trial = TrialRecord(
        number=0,
        config={"n-parallel": 2, "flag": True, "ratio": 0.5},
        config_id="flag=true,n-parallel=2,ratio=0.5",
        config_hash="abc",
        baseline=True,
        outcome="feasible",
        objectives=[ObjectiveRecord(name="maximize output_throughput", value=81.5, level="D(64,64)@4")],
        levels=[
            LevelRecord(
                scenario="D(64,64)",
                concurrency=4,
                feasible=True,
                requests=12,
                stats={"ttft.p90": 0.4, "tpot.p90": math.nan},
            )
        ],
        stages=[Stage(name="launch", started=1.0, ended=2.5)],
    )
    return StudyResult(
        spec_name="s",
        spec_file="s.yaml",
        spec_digest="d",
        study_name="s-d",
        strategy="grid",
        started="2026-11-22T00:00:00+00:00",
        objectives=["maximize output_throughput"],
        trials=[trial],
        best_trial=0,
        baseline_trial=0,
    )


def test_round_trip_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "results.json"
    study().write(path)
    back = StudyResult.read(path)
    assert back.best() is not None and back.best().config == {"n-parallel": 2, "flag": True, "ratio": 0.5}  # type: ignore[union-attr]
    assert [type(v) for v in back.trials[0].config.values()] == [int, bool, float]
    assert back.trials[0].stages[0].seconds == 1.5
    assert back.baseline() is back.best()


def test_nan_is_written_as_null(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    study().write(path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["trials"][0]["levels"][0]["stats"]["tpot.p90"] is None
    assert not list(tmp_path.glob(".*.tmp"))


def test_other_schema_versions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    study().write(path)
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema version 99"):
        StudyResult.read(path)
