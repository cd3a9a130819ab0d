"""The report is written when a study finishes, and a report failure never costs the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import autotuner.report
from autotuner.results import StudyResult
from autotuner.tune import TuneSession

from .factory import sample_study, study


class FinishedStudy:
    """What TuneSession.finish needs from a Study: its final result."""

    def __init__(self, result: StudyResult) -> None:
        self.result = result

    def finish(self) -> StudyResult:
        return self.result


def no_feasible() -> StudyResult:
    return study([t for t in sample_study().trials if t.outcome != "feasible"], best=None, baseline=None)


def session(tmp_path: Path) -> TuneSession:
    fake: Any = FinishedStudy(no_feasible())  # no best config: finish() needs no spec to render a command
    return TuneSession(loaded=None, study=fake, out_dir=tmp_path, run_id="run-1")  # type: ignore[arg-type]


def test_finish_writes_the_report_next_to_results(tmp_path: Path) -> None:
    session(tmp_path).finish()
    assert (tmp_path / "results.json").exists()
    assert (tmp_path / "report.md").read_text().startswith("# smollm2-cpu: autotuner report")
    assert (tmp_path / "report.html").exists()


def test_a_report_failure_is_a_warning_and_results_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(autotuner.report, "write_report", broken)
    result = session(tmp_path).finish()
    assert result.spec_name == "smollm2-cpu"
    assert StudyResult.read(tmp_path / "results.json").trials == result.trials
    assert not (tmp_path / "report.md").exists()
    assert f"autotuner: warning: no report for {tmp_path}: RuntimeError: no fonts" in capsys.readouterr().err
