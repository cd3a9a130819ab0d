"""The runner job hooks: reap what killed runs left (through `autotuner reap`, never by name), refuse busy GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HOOKS = Path(__file__).resolve().parents[3] / "action" / "hooks"


def fake_nvidia_smi(folder: Path, busy: str) -> Path:
    folder.mkdir(exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/usr/bin/env bash\nprintf '%s' '{busy}'\n")
    tool.chmod(0o755)
    return folder


def hook(name: str, tmp_path: Path, busy: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    tools = fake_nvidia_smi(tmp_path / "bin", busy)
    env = {
        **os.environ,
        "PATH": f"{tools}:{os.environ['PATH']}",
        "AUTOTUNER_HOOK_PYTHON": sys.executable,
        "AUTOTUNER_STATE_DIR": str(tmp_path / "state"),
        "DOCKER_HOST": "unix:///nonexistent.sock",  # no daemon: reap checks processes only
        **extra,
    }
    return subprocess.run(["bash", str(HOOKS / name)], env=env, capture_output=True, text=True, timeout=120)


def test_started_reaps_and_passes_when_gpus_are_free(tmp_path: Path) -> None:
    done = hook("job-started.sh", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-m autotuner reap" in done.stdout and "nothing left running" in done.stdout
    assert "GPUs free" in done.stdout


@pytest.mark.parametrize(("allow", "code"), [("0", 1), ("1", 0)])
def test_started_refuses_busy_gpus(tmp_path: Path, allow: str, code: int) -> None:
    busy = "GPU-1234, 4242, python3, 20000 MiB\n"
    done = hook("job-started.sh", tmp_path, busy, AUTOTUNER_HOOK_ALLOW_BUSY_GPU=allow)
    assert done.returncode == code and "4242" in done.stdout


def test_completed_never_fails_the_job(tmp_path: Path) -> None:
    done = hook("job-completed.sh", tmp_path, "GPU-1, 1, x, 1 MiB\n", AUTOTUNER_HOOK_PYTHON="/nonexistent/python")
    assert done.returncode == 0
    assert "still busy" in done.stdout
