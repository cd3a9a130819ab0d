"""The `sim` engine as a real process: HTTP, SSE, readiness, queueing, failures and genai-bench compatibility.

Every server runs in its own process group and is stopped by that group (SIGTERM, then SIGKILL), even when a
test fails. Timing assertions compare configs with wide margins: this runs on 2 noisy cores.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autotuner.engines.sim_server import SimConfig, build_parser, step_seconds
from tests.fixtures.genai_bench.make_fixtures import build_tokenizer

REPO = Path(__file__).resolve().parents[2]
CHAT_PATH = "/v1/chat/completions"


# ------------------------------------------------------------------------------------------------ process helpers


@dataclass
class Sim:
    """A started sim process, its log file and the port it listens on (0 if it never listened)."""

    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop the whole process group by its id: SIGTERM, then SIGKILL after a grace period. Never by name."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything the leader left behind in its group
    except ProcessLookupError:
        pass


def _env() -> dict[str, str]:
    """Run the sim from this checkout, whatever the installed (editable) package points to."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"listening on http://[^:]+:(\d+)", log.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            return 0
        time.sleep(0.01)
    raise AssertionError(f"sim did not start listening: {log.read_text()}")


def _wait_ready(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if request("GET", port, "/health")[0] == 200:
            return
        time.sleep(0.02)
    raise AssertionError("sim never became ready")


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    """Start sim processes on free ports (``--port 0``); stop every one of them at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*flags: str, ready: bool = True) -> Sim:
        log = tmp_path / f"sim-{len(started)}.log"
        cmd = [sys.executable, "-m", "autotuner.engines.sim_server", "--host", "127.0.0.1", "--port", "0", *flags]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=_env())
        started.append(proc)
        port = _wait_listening(proc, log)
        if ready:
            _wait_ready(port)
        return Sim(proc, log, port)

    yield start
    for proc in started:
        _stop_group(proc)


# --------------------------------------------------------------------------------------------------- HTTP helpers


def request(method: str, port: int, path: str, payload: Any = None, timeout: float = 30) -> tuple[int, bytes]:
    """One stdlib HTTP request; (0, b"") when the server is unreachable."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = None if payload is None else json.dumps(payload)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


@dataclass
class Streamed:
    """What a client sees of one streamed request."""

    status: int
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    ttft: float | None = None
    e2e: float = 0.0

    @property
    def text(self) -> str:
        parts = []
        for event in self.events:
            for choice in event.get("choices", []):
                parts.append(choice.get("delta", {}).get("content") or choice.get("text") or "")
        return "".join(parts)

    @property
    def content_events(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["choices"] and (e["choices"][0].get("delta", {}).get("content") or e["choices"][0].get("text"))
        ]


def stream(port: int, payload: dict[str, Any], path: str = CHAT_PATH) -> Streamed:
    """POST with stream=true and read the SSE events as genai-bench does (line by line, until [DONE])."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.monotonic()
    try:
        conn.request(
            "POST", path, body=json.dumps({**payload, "stream": True}), headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        result = Streamed(response.status)
        if response.status != 200:
            response.read()
            return result
        for line in response:
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            if line[6:] == b"[DONE]":
                result.done = True
                break
            event = json.loads(line[6:])
            result.events.append(event)
            if result.ttft is None and Streamed(200, [event]).text:
                result.ttft = time.monotonic() - start
        result.e2e = time.monotonic() - start
        return result
    finally:
        conn.close()


def chat(content: str = "one two three", **extra: Any) -> dict[str, Any]:
    return {"model": "sim-model", "messages": [{"role": "user", "content": content}], **extra}


@dataclass
class Load:
    """A closed-loop load: aggregate tokens per second and per-request TTFTs."""

    seconds: float
    tokens: int
    ttfts: list[float]

    @property
    def throughput(self) -> float:
        return self.tokens / self.seconds

    @property
    def mean_ttft(self) -> float:
        return sum(self.ttfts) / len(self.ttfts)


def run_load(port: int, concurrency: int, per_worker: int, max_tokens: int) -> Load:
    """`concurrency` threads each send `per_worker` streamed requests back to back, like genai-bench's users."""
    results: list[Streamed] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(per_worker):
            result = stream(port, chat(max_tokens=max_tokens, ignore_eos=True))
            with lock:
                results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - start
    assert all(r.status == 200 and r.done for r in results)
    return Load(seconds, sum(len(r.content_events) for r in results), [r.ttft or 0.0 for r in results])


# ----------------------------------------------------------------------------------------------------------- tests


def test_parser_defaults_and_validation() -> None:
    parser = build_parser()
    config = SimConfig.from_args(parser.parse_args([]))
    assert config.max_num_seqs * config.max_model_len <= config.kv_cache_tokens  # defaults start
    assert config.enable_prefix_caching and not parser.parse_args(["--no-enable-prefix-caching"]).enable_prefix_caching
    # a lone request on an idle server: TTFT = step with its prefill, TPOT = one-sequence step
    assert step_seconds(config, 1, 0) == pytest.approx((15.0 + 0.5) / 1000)
    assert step_seconds(config, 1, 2000) == pytest.approx((15.5 + 100.0) / 1000)
    for bad in (["--error-rate", "2"], ["--max-num-seqs", "0"], ["--time-scale", "0"], ["--bogus"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_health_is_503_until_the_startup_delay_has_passed(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--startup-delay", "1.0", ready=False)
    started = time.monotonic()
    assert request("GET", sim.port, "/health")[0] == 503
    assert request("POST", sim.port, CHAT_PATH, chat(max_tokens=2))[0] == 503
    _wait_ready(sim.port)
    assert time.monotonic() - started >= 0.5
    assert "ready" in sim.output()


def test_hang_never_becomes_ready(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--hang", ready=False)
    time.sleep(0.5)
    assert request("GET", sim.port, "/health")[0] == 503
    assert sim.proc.poll() is None


def test_streaming_chat_reports_usage_and_exact_token_count(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--time-scale", "0.1")
    result = stream(
        sim.port, chat("one two six", max_tokens=17, ignore_eos=True, stream_options={"include_usage": True})
    )
    assert result.status == 200 and result.done
    assert result.events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    tokens = result.content_events
    assert len(tokens) == 17
    assert [e["choices"][0]["finish_reason"] for e in tokens] == [None] * 16 + ["length"]
    usage_event = result.events[-1]
    assert usage_event["choices"] == []
    # 3 word pieces + 3 per message (<|im_start|>, role, <|im_end|>) + 2 for the reply header
    assert usage_event["usage"] | {"prompt_tokens_details": None} == {
        "prompt_tokens": 8,
        "completion_tokens": 17,
        "total_tokens": 25,
        "prompt_tokens_details": None,
    }
    assert all(e["object"] == "chat.completion.chunk" and e["model"] == "sim-model" for e in result.events)

    no_usage = stream(sim.port, chat(max_completion_tokens=3, ignore_eos=True))
    assert len(no_usage.content_events) == 3 and "usage" not in no_usage.events[-1]


def test_completions_and_non_streaming(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--time-scale", "0.1")
    result = stream(
        sim.port,
        {"prompt": "hello world", "max_tokens": 5, "ignore_eos": True, "stream_options": {"include_usage": True}},
        "/v1/completions",
    )
    assert len(result.content_events) == 5 and result.events[-1]["usage"]["prompt_tokens"] == 4  # hell o worl d
    status, body = request(
        "POST", sim.port, "/v1/completions", {"prompt": "hello world", "max_tokens": 4, "ignore_eos": True}
    )
    reply = json.loads(body)
    assert status == 200 and reply["object"] == "text_completion" and reply["usage"]["completion_tokens"] == 4
    assert reply["choices"][0]["finish_reason"] == "length" and len(reply["choices"][0]["text"].split()) == 4
    status, body = request("POST", sim.port, CHAT_PATH, chat(max_tokens=6, min_tokens=6))
    reply = json.loads(body)
    assert status == 200 and reply["choices"][0]["message"]["role"] == "assistant"
    assert reply["usage"]["completion_tokens"] == 6  # min_tokens == max_tokens forbids an early stop


def test_without_ignore_eos_outputs_stop_early_and_respect_min_tokens(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--time-scale", "0.05", "--eos-probability", "0.2")
    lengths = [len(stream(sim.port, chat(max_tokens=50, min_tokens=3)).content_events) for _ in range(8)]
    assert all(3 <= n <= 50 for n in lengths)
    assert min(lengths) < 50 and len(set(lengths)) > 1


def test_errors_models_and_metrics_endpoints(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--time-scale", "0.1", "--max-model-len", "64", "--max-num-seqs", "4")
    assert request("POST", sim.port, CHAT_PATH, chat(model="other"))[0] == 404
    status, body = request("POST", sim.port, CHAT_PATH, chat(max_tokens=100))
    assert status == 400 and "maximum context length is 64" in json.loads(body)["error"]["message"]
    assert request("POST", sim.port, CHAT_PATH, {"messages": []})[0] == 400
    status, body = request("GET", sim.port, "/v1/models")
    assert status == 200 and json.loads(body)["data"][0]["id"] == "sim-model"
    stream(sim.port, chat(max_tokens=3, ignore_eos=True))
    status, body = request("GET", sim.port, "/metrics")
    text = body.decode()
    assert status == 200
    assert 'sim:num_requests_running{model_name="sim-model"} 0' in text
    assert 'sim:num_requests_waiting{model_name="sim-model"} 0' in text
    assert 'sim:generation_tokens_total{model_name="sim-model"} 3' in text


def test_prefix_cache_hits_and_resets(start_sim: Callable[..., Sim]) -> None:
    prompt = " ".join(f"word{i}" for i in range(100))  # 200 pieces: 12 full blocks with the chat header
    payload = chat(prompt, max_tokens=2, ignore_eos=True, stream_options={"include_usage": True})

    def cached(port: int) -> int:
        return int(stream(port, payload).events[-1]["usage"]["prompt_tokens_details"]["cached_tokens"])

    sim = start_sim("--time-scale", "0.1")
    assert cached(sim.port) == 0
    assert cached(sim.port) == 192
    for path in ("/reset_prefix_cache", "/flush_cache"):
        assert request("POST", sim.port, path)[0] == 200
        assert cached(sim.port) == 0
    off = start_sim("--time-scale", "0.1", "--no-enable-prefix-caching")
    assert cached(off.port) == 0 and cached(off.port) == 0


def test_same_seed_and_request_sequence_give_the_same_outputs_and_errors(start_sim: Callable[..., Sim]) -> None:
    flags = ("--time-scale", "0.05", "--error-rate", "0.3", "--eos-probability", "0.1")

    def transcript(sim: Sim) -> list[tuple[int, str]]:
        out = []
        for i in range(16):
            result = stream(sim.port, chat(f"question {i}", max_tokens=30))
            out.append((result.status, result.text))
        return out

    first = transcript(start_sim("--seed", "7", *flags))
    second = transcript(start_sim("--seed", "7", *flags))
    other = transcript(start_sim("--seed", "8", *flags))
    assert first == second
    assert {status for status, _ in first} == {200, 500}
    assert other != first


def test_error_rate_answers_http_500(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--time-scale", "0.05", "--error-rate", "0.5")
    statuses = [request("POST", sim.port, CHAT_PATH, chat(max_tokens=2))[0] for _ in range(20)]
    assert set(statuses) == {200, 500} and 3 <= statuses.count(500) <= 17
    always = start_sim("--error-rate", "1")
    status, body = request("POST", always.port, CHAT_PATH, chat(max_tokens=2))
    assert status == 500 and json.loads(body)["error"]["code"] == 500
    assert "request_failure_total" in request("GET", always.port, "/metrics")[1].decode()


def test_higher_max_num_seqs_raises_throughput_at_concurrency_8(start_sim: Callable[..., Sim]) -> None:
    # model: 1 seq -> 5.5 ms per token; 8 seqs -> 9 ms per step for 8 tokens: about 5x the throughput
    flags = ("--decode-step-ms", "10", "--decode-step-ms-per-seq", "1", "--time-scale", "0.5")
    narrow = run_load(start_sim("--max-num-seqs", "1", *flags).port, concurrency=8, per_worker=2, max_tokens=16)
    wide = run_load(start_sim("--max-num-seqs", "8", *flags).port, concurrency=8, per_worker=2, max_tokens=16)
    assert narrow.tokens == wide.tokens == 8 * 2 * 16
    assert wide.throughput > 2.0 * narrow.throughput, (narrow, wide)


def test_ttft_rises_when_requests_queue_beyond_max_num_seqs(start_sim: Callable[..., Sim]) -> None:
    # 8 concurrent requests, 2 slots: the last pair waits for 3 pairs x 24 steps; with 8 slots nobody waits
    flags = ("--decode-step-ms", "10", "--decode-step-ms-per-seq", "1", "--time-scale", "0.5")
    queued = run_load(start_sim("--max-num-seqs", "2", *flags).port, concurrency=8, per_worker=1, max_tokens=24)
    admitted = run_load(start_sim("--max-num-seqs", "8", *flags).port, concurrency=8, per_worker=1, max_tokens=24)
    assert queued.mean_ttft > 3.0 * admitted.mean_ttft, (queued.ttfts, admitted.ttfts)
    assert max(queued.ttfts) > 0.2  # the last pair waited ~3 x 24 steps of 6 ms


def test_single_stream_token_time_follows_the_model(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--decode-step-ms", "20", "--decode-step-ms-per-seq", "0")
    result = stream(sim.port, chat(max_tokens=21, ignore_eos=True))
    assert result.ttft is not None
    tpot = (result.e2e - result.ttft) / 20
    assert 0.018 <= tpot <= 0.045, tpot


def test_oom_config_fails_at_start(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--max-num-seqs", "64", "--max-model-len", "4096", "--kv-cache-tokens", "131072", ready=False)
    assert sim.proc.wait(timeout=10) == 1
    assert "CUDA out of memory" in sim.output()


def test_crash_after_n_requests(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--time-scale", "0.05", "--crash-after", "3")
    for _ in range(3):
        assert stream(sim.port, chat(max_tokens=4, ignore_eos=True)).done
    assert sim.proc.wait(timeout=10) == 1
    assert request("POST", sim.port, CHAT_PATH, chat(max_tokens=2))[0] == 0
    assert "simulated crash" in sim.output()


def test_sigterm_exits_0_promptly_and_leaves_no_process(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim("--decode-step-ms", "50")
    in_flight = threading.Thread(target=stream, args=(sim.port, chat(max_tokens=500, ignore_eos=True)), daemon=True)
    in_flight.start()
    time.sleep(0.3)
    sent = time.monotonic()
    os.killpg(sim.proc.pid, signal.SIGTERM)
    assert sim.proc.wait(timeout=5) == 0
    assert time.monotonic() - sent < 2.0
    with pytest.raises(ProcessLookupError):
        os.killpg(sim.proc.pid, 0)
    in_flight.join(timeout=5)
    assert "shutting down" in sim.output()


# ------------------------------------------------------------------------------------------- genai-bench, for real


def _offline_env() -> dict[str, str]:
    return {**_env(), "HF_HUB_OFFLINE": "1", "ENABLE_UI": "false"}


@pytest.mark.slow
def test_real_genai_bench_run_against_the_sim(start_sim: Callable[..., Sim], tmp_path: Path) -> None:
    tokenizer = tmp_path / "tokenizer"
    build_tokenizer(tokenizer)  # the same tiny tokenizer the committed genai-bench fixtures were made with
    check = "from transformers import AutoTokenizer; import sys; print(len(AutoTokenizer.from_pretrained(sys.argv[1]).encode('a summer day')))"
    loaded = subprocess.run(
        [sys.executable, "-c", check, str(tokenizer)], capture_output=True, text=True, env=_offline_env(), timeout=120
    )
    assert loaded.returncode == 0 and int(loaded.stdout.split()[-1]) > 0, loaded.stderr

    # genai-bench stops a level on a 1-second tick once enough requests completed and does not trim the
    # overshoot. A request here takes ~1.5 s (16 steps of 94 ms), so each tick sees at most one pair finish
    # and the tick after the 3rd pair (~4.5 s) stops the level with exactly 6.
    sim = start_sim("--decode-step-ms", "90", "--decode-step-ms-per-seq", "2", "--max-num-seqs", "4")
    experiments = tmp_path / "experiments"
    cmd = [
        "genai-bench", "benchmark",
        "--api-backend", "vllm",
        "--api-base", f"http://127.0.0.1:{sim.port}",
        "--api-key", "dummy",
        "--api-model-name", "sim-model",
        "--model-tokenizer", str(tokenizer),
        "--task", "text-to-text",
        "--traffic-scenario", "D(32,16)",
        "--num-concurrency", "2",
        "--max-requests-per-run", "6",
        "--max-time-per-run", "1",
        "--server-engine", "vLLM",
        "--experiment-base-dir", str(experiments),
        "--experiment-folder-name", "run",
        "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    bench = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=_offline_env(), cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = bench.communicate(timeout=300)
    finally:
        _stop_group(bench)
    text = output.decode(errors="replace")
    assert bench.returncode == 0, text[-3000:]

    run_files = [
        p
        for p in (experiments / "run").iterdir()
        if re.match(r"^.+_.+_(?:concurrency|batch_size)_\d+_time_\d+s\.json$", p.name)
    ]
    assert len(run_files) == 1, sorted(p.name for p in (experiments / "run").iterdir())
    run = json.loads(run_files[0].read_text())
    aggregated = run["aggregated_metrics"]
    assert aggregated["scenario"] == "D(32,16)" and aggregated["num_concurrency"] == 2
    assert aggregated["num_completed_requests"] == 6, aggregated
    assert aggregated["num_error_requests"] == 0 and aggregated["error_codes_frequency"] == {}
    samples = run["individual_request_metrics"]
    assert len(samples) == 6
    assert all(s["num_output_tokens"] == 16 and s["error_code"] is None for s in samples)
    assert all(s["ttft"] > 0 and s["tpot"] > 0 for s in samples)
    assert "request 5 chat stream=True status=200" in sim.output()
