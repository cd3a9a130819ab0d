"""Files written whole or not at all (``autotuner.atomic``): what an interrupt leaves behind, and when it lands.

A full disk is the other way a write stops half way; it needs a real small file system, so those tests are in
``tests/reliability/test_disk_full.py``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import FrameType

import pytest

from autotuner.atomic import held_signals, replace_file, staged
from autotuner.results import StudyResult

from .report.golden import FIXTURE


def test_staged_files_appear_together_and_leave_no_temporary_file(tmp_path: Path) -> None:
    with staged() as files:
        files.write(tmp_path / "charts" / "a.png", b"\x89PNG")
        files.write(tmp_path / "report.md", "# report\n")
        assert not (tmp_path / "report.md").exists()  # staged under a temporary name until the block ends
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "charts",
        "charts/a.png",
        "report.md",
    ]
    assert (tmp_path / "report.md").read_text() == "# report\n"


def test_an_interrupt_while_staging_leaves_the_previous_report_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("the previous report\n")
    with pytest.raises(KeyboardInterrupt), staged() as files:
        files.write(tmp_path / "charts" / "a.png", b"\x89PNG")
        files.write(tmp_path / "report.md", "half of a new report")
        raise KeyboardInterrupt  # Ctrl-C before the last file was staged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]  # no temporary file, no empty charts/
    assert (tmp_path / "report.md").read_text() == "the previous report\n"


def test_sigint_during_held_signals_is_delivered_after_the_block() -> None:
    """The real signal, sent to this process: Python would raise KeyboardInterrupt at the next bytecode; held, it
    is raised once the block (the renames of a report) is done."""
    finished = []
    with pytest.raises(KeyboardInterrupt), held_signals():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler has run by now
        finished.append("renames done")
    assert finished == ["renames done"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


class Stop(Exception):
    pass


def test_a_held_sigterm_reaches_the_handler_that_was_installed() -> None:
    """SIGTERM inside ``graceful_termination`` raises ``Terminated``: held, the same handler runs after the block."""

    def raise_stop(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signum)

    previous = signal.signal(signal.SIGTERM, raise_stop)
    try:
        with pytest.raises(Stop) as stopped, held_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        assert stopped.value.args == (signal.SIGTERM,)
        assert signal.getsignal(signal.SIGTERM) is raise_stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_results_json_is_replaced_whole(tmp_path: Path) -> None:
    """Streamed one trial at a time, the file is byte for byte what dumping the whole result at once gives."""
    result = StudyResult.read(FIXTURE)
    path = tmp_path / "results.json"
    result.write(path)
    assert path.read_text() == json.dumps(result.model_dump(mode="json"), indent=2) + "\n"
    replace_file(path, path.read_text())
    assert StudyResult.read(path) == StudyResult.read(FIXTURE)
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
