"""A full disk under the report dir: what was written stays whole, nothing half-written or temporary is left, and
the command says which path is out of space (exit 5, an infrastructure problem), without a traceback.

As in ``benchmarks/faults.py`` (whose ``disk-full`` row runs a whole ``autotuner tune`` into a disk that fills up
after the first trial), the disk is a small tmpfs mounted for the test, then filled: this needs root.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotuner.report import write_report
from autotuner.results import StudyResult

from ..unit.report.golden import FIXTURE
from .conftest import unavailable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (room for a results.json and a report), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        unavailable(f"mount failed: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> None:
    """Write zeros until the file system refuses: from now on, any write there fails with ENOSPC."""
    with open(disk / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 16))
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != "filler")


def test_results_json_stays_whole_and_no_temporary_file_is_left(disk: Path) -> None:
    first = StudyResult.read(FIXTURE)
    path = disk / "run" / "results.json"
    first.model_copy(update={"trials": first.trials[:1]}).write(path)
    before = path.read_bytes()
    fill(disk)
    with pytest.raises(OSError) as raised:
        first.write(path)  # all the trials: more than fits
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(path)  # a write on an open file names none: the error names the target
    assert path.read_bytes() == before
    assert len(StudyResult.read(path).trials) == 1
    assert listing(disk) == ["run", "run/results.json"]


def test_a_report_is_written_whole_or_not_at_all(disk: Path) -> None:
    result = StudyResult.read(FIXTURE)
    out = disk / "run"
    written = write_report(result.model_copy(update={"trials": result.trials[:1]}), out)
    before = {p: p.read_bytes() for p in written.all()}
    fill(disk)
    with pytest.raises(OSError) as raised:
        write_report(result, out)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename is not None
    assert {p: p.read_bytes() for p in written.all()} == before  # the previous report, untouched
    assert not [name for name in listing(disk) if name.rsplit("/", 1)[-1].startswith(".")]  # no temporary files
    (disk / "filler").unlink()
    fresh = disk / "fresh"
    fresh.mkdir()
    fill(disk)
    with pytest.raises(OSError):
        write_report(result, fresh)
    assert listing(fresh) == []  # a first report that did not fit: none at all, not an empty charts/ folder


def test_the_cli_names_the_full_disk_and_exits_5(disk: Path, tmp_path: Path) -> None:
    fill(disk)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "autotuner", "report", str(FIXTURE), "--out", str(disk / "report")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 5, output
    assert "no space left on device" in output and str(disk / "report") in output, output
    assert "Traceback" not in output and "internal error" not in output, output
    assert listing(disk / "report") == []
