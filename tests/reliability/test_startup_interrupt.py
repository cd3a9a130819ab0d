"""A Ctrl-C while the tool is still loading ends like any other interrupt: exit 130 and one line, no traceback.

``autotuner`` imports pydantic, optuna and its spec models before it can parse its command line (a second or two on
a busy runner); an interrupt landing there used to escape as a KeyboardInterrupt traceback from inside an import,
and the process died by SIGINT (exit -2), which a CI runner reports as a crash. Here the interrupt is sent from
inside that very window, every time: an import hook signals the process when ``autotuner.validation`` starts
loading, the way a user's Ctrl-C or a runner's cancel would land.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import os, runpy, signal, sys

class InterruptWhileLoading:
    def find_spec(self, name, path=None, target=None):
        if name == "autotuner.validation":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, InterruptWhileLoading())
{launch}
"""

LAUNCHES = {
    # what `python -m autotuner ...` runs
    "python -m": 'runpy.run_module("autotuner", run_name="__main__", alter_sys=True)',
    # what pip's `autotuner` console script runs (its entry point, checked in tests/unit/test_project.py)
    "console script": "from autotuner.entry import main\nsys.exit(main())",
}


@pytest.mark.parametrize("launch", sorted(LAUNCHES))
def test_an_interrupt_while_the_tool_loads_exits_130_without_a_traceback(launch: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    code = PROGRAM.format(launch=LAUNCHES[launch])
    done = subprocess.run(
        [sys.executable, "-c", code, "validate", "--no-engine-flags", "tuning_specs/smollm2-cpu.yaml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 130, (done.returncode, done.stdout, done.stderr)
    assert "autotuner: interrupted while starting" in done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    assert "valid" not in done.stdout  # nothing ran
