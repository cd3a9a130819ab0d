"""``python -m autotuner.engines.llamacpp_server`` against the real engine (xllamacpp) and the real SmolLM2 GGUF.

Each test starts the launcher as the tool does: a subprocess in its own process group, on a free port, logging to a
file. Every process started here is stopped through its process group, also when a test fails (fixtures).
HTTP uses the standard library only.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import autotuner
from autotuner.catalog import BUILTIN_MODELS
from autotuner.engines import llamacpp_server

pytestmark = pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="needs: pip install xllamacpp")

MODULE = "autotuner.engines.llamacpp_server"
# The tests' own checkout, first on the child's path: an editable install may point elsewhere.
SOURCE_ROOT = Path(autotuner.__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
STOP_GRACE = 10.0
# Bytes of KV cache per token for SmolLM2-135M with f32 K and V: 30 layers x (K + V) x 3 heads x 64 dims x 4 bytes.
KV_BYTES_PER_TOKEN_F32 = 30 * 2 * 192 * 4


@dataclass
class Engine:
    """One launcher process: its group is its pid (``start_new_session``), its output goes to ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"engine exited with {self.process.returncode} before it was healthy:\n{self.output()}")
            if _health_status(self.port) == 200:
                return
            time.sleep(0.1)
        pytest.fail(f"engine not healthy after {timeout} s:\n{self.output()}")

    def wait_exit(self, timeout: float = READY_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"engine still running after {timeout} s:\n{self.output()}")

    def wait_for_output(self, text: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"no {text!r} in the output:\n{self.output()}")
            time.sleep(0.02)


def start_engine(log: Path, *flags: str, port: int | None = None) -> Engine:
    port = free_port() if port is None else port
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")]))}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", MODULE, "--host", "127.0.0.1", "--port", str(port), *flags],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    return Engine(process, port, log)


def stop_group(process: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM to the whole group, SIGKILL after the grace period; never by name."""
    if process.poll() is not None and not _group_exists(process.pid):
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _health_status(port: int) -> int | None:
    try:
        status, _ = http_get(port, "/health")
    except OSError:
        return None
    return status


def http_get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def stream_chat(port: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST a streaming chat completion and return its server-sent events' JSON payloads, up to ``[DONE]``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            "POST", "/v1/chat/completions", json.dumps({**body, "stream": True}), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        events: list[dict[str, Any]] = []
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                return events
            events.append(json.loads(line[len("data: ") :]))
        pytest.fail(f"stream ended without [DONE] after {len(events)} events")
    finally:
        connection.close()


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_path() -> Path:
    try:
        return BUILTIN_MODELS["smollm2"].path()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """Start launchers for one test; each one's process group is stopped afterwards, whatever the outcome."""
    started: list[Engine] = []

    def start(*flags: str, port: int | None = None) -> Engine:
        engine = start_engine(tmp_path / f"engine-{len(started)}.log", *flags, port=port)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        stop_group(engine.process)


@pytest.fixture(scope="module")
def served(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One healthy server shared by the read-only API checks (a start costs about a second)."""
    engine = start_engine(
        tmp_path_factory.mktemp("served") / "engine.log", "--model", str(model_path), "--alias", "smollm2", "-np", "2"
    )
    try:
        engine.wait_healthy()
        yield engine
    finally:
        stop_group(engine.process)


# --- serving -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ready_line_and_health(served: Engine) -> None:
    # /health turns 200 a moment before the line: the launcher prints it after replaying the start-up log.
    served.wait_for_output(llamacpp_server.READY_PREFIX)
    assert _health_status(served.port) == 200
    ready = [line for line in served.output().splitlines() if line.startswith(llamacpp_server.READY_PREFIX)]
    assert ready == [
        f"{llamacpp_server.READY_PREFIX} at http://127.0.0.1:{served.port} "
        f"(model {BUILTIN_MODELS['smollm2'].path()}, pid {served.process.pid})"
    ]


@pytest.mark.slow
def test_stream_reports_usage_and_ignore_eos_gives_exact_token_count(served: Engine) -> None:
    events = stream_chat(
        served.port,
        {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 32,
            "ignore_eos": True,
            "stream_options": {"include_usage": True},
        },
    )
    usage_events = [event for event in events if event.get("usage")]
    assert len(usage_events) == 1, events[-3:]
    usage = usage_events[0]["usage"]
    assert usage["completion_tokens"] == 32
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + 32
    text = "".join(event["choices"][0]["delta"].get("content") or "" for event in events if event["choices"])
    assert text


@pytest.mark.slow
def test_models_lists_the_alias(served: Engine) -> None:
    status, body = http_get(served.port, "/v1/models")
    assert status == 200
    assert [model["id"] for model in json.loads(body)["data"]] == ["smollm2"]


@pytest.mark.slow
def test_metrics_on_by_default(served: Engine) -> None:
    status, body = http_get(served.port, "/metrics")
    assert status == 200
    assert b"llamacpp:prompt_tokens_total" in body


@pytest.mark.slow
def test_flags_reach_the_engine(launch: Callable[..., Engine], model_path: Path) -> None:
    engine = launch(
        "-m", str(model_path), "--n-parallel", "3", "--ctx-size", "1536", "--seed", "7", "-a", "a, b", "--no-metrics"
    )
    engine.wait_healthy()
    props = json.loads(http_get(engine.port, "/props")[1])
    assert props["total_slots"] == 3
    assert props["default_generation_settings"]["n_ctx"] == 512  # n_ctx is shared by the slots
    assert props["default_generation_settings"]["params"]["seed"] == 7
    assert json.loads(http_get(engine.port, "/v1/models")[1])["data"][0]["aliases"] == ["a", "b"]
    assert http_get(engine.port, "/metrics")[0] == 501  # llama.cpp's answer when the endpoint is off


@pytest.mark.slow
def test_build_params_sets_every_common_params_field() -> None:
    """The fields no HTTP endpoint shows (poll, continuous batching, ...) are checked on the CommonParams itself."""
    import xllamacpp

    args = llamacpp_server.build_parser().parse_args(
        [
            *("-m", "x.gguf", "--host", "0.0.0.0", "--port", "9000", "-c", "4096", "-np", "4", "-b", "1024"),
            *("-ub", "256", "-t", "2", "-tb", "0", "--poll", "0", "-fa", "off", "-ctk", "q8_0", "-ctv", "bf16"),
            *("--no-cont-batching", "--no-cache-prompt", "--cache-reuse", "64", "-kvu", "--threads-http", "3"),
            *("--no-metrics", "-a", "m", "-s", "-1"),
        ]
    )
    params = llamacpp_server.build_params(args, xllamacpp)
    assert (params.model.path, params.hostnames, params.port) == ("x.gguf", ["0.0.0.0"], 9000)
    assert (params.n_ctx, params.n_parallel, params.n_batch, params.n_ubatch) == (4096, 4, 1024, 256)
    assert (params.cpuparams.n_threads, params.cpuparams_batch.n_threads, params.cpuparams.poll) == (2, -1, 0)
    assert params.flash_attn_type == xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
    assert params.cache_type_k == xllamacpp.ggml_type.GGML_TYPE_Q8_0
    assert params.cache_type_v == xllamacpp.ggml_type.GGML_TYPE_BF16
    assert (params.cont_batching, params.cache_prompt, params.n_cache_reuse) == (False, False, 64)
    assert (params.kv_unified, params.n_threads_http, params.endpoint_metrics) == (True, 3, False)
    assert (params.model_alias, params.sampling.seed) == ({"m"}, xllamacpp.LLAMA_DEFAULT_SEED)


@pytest.mark.slow
def test_unset_flags_keep_engine_defaults() -> None:
    import xllamacpp

    args = llamacpp_server.build_parser().parse_args(["-m", "x.gguf"])
    params, defaults = llamacpp_server.build_params(args, xllamacpp), xllamacpp.CommonParams()
    for name in ("n_ctx", "n_parallel", "n_batch", "n_ubatch", "cont_batching", "cache_prompt", "kv_unified"):
        assert getattr(params, name) == getattr(defaults, name), name
    assert params.cpuparams.n_threads == defaults.cpuparams.n_threads
    assert params.endpoint_metrics is True  # the one default we change


# --- stopping ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_0_and_leaves_nothing(
    launch: Callable[..., Engine], model_path: Path, signum: signal.Signals
) -> None:
    engine = launch("--model", str(model_path))
    engine.wait_healthy()
    started = time.monotonic()
    os.killpg(engine.process.pid, signum)
    assert engine.wait_exit(STOP_GRACE) == 0, engine.output()
    assert time.monotonic() - started < STOP_GRACE
    assert not _group_exists(engine.process.pid)
    output = engine.output()
    assert f"{signum.name} received, stopping" in output
    assert "Traceback" not in output
    assert _health_status(engine.port) is None  # nothing listens any more


@pytest.mark.slow
def test_sigterm_during_model_load_exits_0(launch: Callable[..., Engine], model_path: Path) -> None:
    engine = launch("--model", str(model_path))
    engine.wait_for_output(f"{llamacpp_server.PROG}: loading")
    os.killpg(engine.process.pid, signal.SIGTERM)
    assert engine.wait_exit(STOP_GRACE) == 0, engine.output()
    assert not _group_exists(engine.process.pid)
    assert "SIGTERM received, stopping" in engine.output()


# --- failures ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--n-paralel", "2"], "--n-paralel"),
        (["--flash-attn", "maybe"], "--flash-attn"),
        (["--threads", "two"], "--threads"),
        (["--cache-type-k", "q3_k"], "--cache-type-k"),
    ],
    ids=["unknown-flag", "bad-choice", "bad-int", "unsupported-cache-type"],
)
def test_invalid_argument_exits_2_naming_the_flag(
    launch: Callable[..., Engine], model_path: Path, flags: list[str], named: str
) -> None:
    engine = launch("--model", str(model_path), *flags)
    assert engine.wait_exit() == llamacpp_server.EXIT_USAGE
    output = engine.output()
    assert "error:" in output and named in output, output


@pytest.mark.slow
def test_missing_model_file(launch: Callable[..., Engine], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.gguf"
    engine = launch("--model", str(missing))
    assert engine.wait_exit() == llamacpp_server.EXIT_MODEL_NOT_FOUND
    assert f"{llamacpp_server.ERROR_PREFIX}model not found: {missing}" in engine.output()


@pytest.mark.slow
def test_port_already_in_use(launch: Callable[..., Engine], model_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        engine = launch("--model", str(model_path), port=port)
        assert engine.wait_exit() == llamacpp_server.EXIT_ADDRESS_IN_USE
    assert f"{llamacpp_server.ERROR_PREFIX}address already in use: 127.0.0.1:{port}" in engine.output()


@pytest.mark.slow
def test_kv_cache_larger_than_memory_is_out_of_memory(launch: Callable[..., Engine], model_path: Path) -> None:
    """A KV cache twice the size of RAM + swap: the kernel refuses the allocation unless it overcommits always."""
    if Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "1":
        pytest.skip("vm.overcommit_memory=1: the allocation would succeed and the OOM killer would act instead")
    n_ctx = max(1_000_000, 2 * _memory_and_swap_bytes() // KV_BYTES_PER_TOKEN_F32)
    engine = launch("--model", str(model_path), "-c", str(n_ctx), "-ctk", "f32", "-ctv", "f32")
    assert engine.wait_exit() == llamacpp_server.EXIT_OUT_OF_MEMORY, engine.output()
    assert f"{llamacpp_server.ERROR_PREFIX}out of memory: " in engine.output()


@pytest.mark.slow
def test_other_start_failures_name_llama_cpps_error(launch: Callable[..., Engine], model_path: Path) -> None:
    engine = launch("--model", str(model_path), "--flash-attn", "off", "--cache-type-v", "q8_0")
    assert engine.wait_exit() == llamacpp_server.EXIT_START_FAILED
    assert (
        f"{llamacpp_server.ERROR_PREFIX}engine failed to start: "
        "llama_init_from_model: quantized V cache requires flash_attn to be enabled"
    ) in engine.output()


def _memory_and_swap_bytes() -> int:
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(fields[name].split()[0]) * 1024 for name in ("MemTotal", "SwapTotal"))
