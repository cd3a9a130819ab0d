"""The genai-bench driver for real: real genai-bench (in its worker, and plain) against real engines.

The main test runs real genai-bench against the real llama.cpp engine (xllamacpp serving SmolLM2, tokenizer
derived from the GGUF). Where a real engine would be slow or cannot show what is tested, the ``sim`` engine
stands in (each test says for what): it is a real HTTP server speaking vLLM's API, with a cache-reset endpoint
and a log of every request and reset. Every test stops what it started: engines through their deployment
(process group), genai-bench workers through ``GenaiBench.close()`` (process group); a final check looks for
leftovers among this process's children.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from autotuner.bench import driver
from autotuner.bench import runner as runner_module
from autotuner.bench.driver import ProgressEvent, run_workload
from autotuner.bench.measurement import LevelFailure, LevelKey, LevelResult, Measurement
from autotuner.bench.runner import GenaiBench
from autotuner.catalog import BUILTIN_MODELS
from autotuner.engines.profile import EngineProfile
from autotuner.engines.runtimes import LLAMACPP, SIM
from autotuner.launch import Deployment, LaunchRequest, ProcessLauncher, wait_until_ready
from autotuner.launch.process import free_port
from autotuner.spec.models import Workload

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TOKENIZER = "builtin:smollm2"  # genai-bench's tokenizer, derived from the GGUF (also for the sim: any will do)
SECRET_TOKEN = "hf_bench_driver_secret_token_123"
SECRET_PASSWORD = "pr0xy-pa55word-secret"


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Engines started here are recorded in this test's own folder (reaping never sees another run's)."""
    monkeypatch.setenv("AUTOTUNER_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="module")
def bench() -> Iterator[GenaiBench]:
    """One genai-bench worker for the module's tests, as a study keeps one for its trials."""
    shared = GenaiBench()
    try:
        yield shared
    finally:
        shared.close()
    assert _leftovers() == []


def _leftovers() -> list[str]:
    children = psutil.Process().children(recursive=True)
    suspects = ("genai_bench_worker", "genai-bench", "genai_bench.cli", "autotuner.engines")
    return [" ".join(p.cmdline()) for p in children if any(s in " ".join(p.cmdline()) for s in suspects)]


def _engine(profile: EngineProfile, model: str, flags: dict[str, Any], tmp_path: Path) -> Deployment:
    request = LaunchRequest(
        run_id="test-bench-driver",
        name="engine",
        profile=profile,
        model=model,
        served_name="smollm2" if profile is LLAMACPP else model,
        flags=flags,
        env={},
        log_dir=tmp_path / "engine",
        python=sys.executable,
    )
    deployment = ProcessLauncher().start(request)
    try:
        wait_until_ready(deployment, profile, timeout=90)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def _sim(tmp_path: Path, **flags: Any) -> Deployment:
    """The sim, fast by default (a 16-token reply in ~0.25 s)."""
    return _engine(SIM, "sim-model", {"seed": 1, **flags}, tmp_path)


def _workload(**fields: Any) -> Workload:
    values: dict[str, Any] = dict(
        scenarios=("D(32,16)",), concurrency=(1, 2), max_requests=4, max_time=timedelta(minutes=1), warmup_requests=1
    )
    values.update(fields)
    return Workload(**values)


def _files_text(folder: Path) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------------ real llama.cpp


def test_real_llamacpp_two_scenarios_two_levels_secrets_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real genai-bench against real llama.cpp: D(32,16) and N(32,8)/(16,4), each at concurrency 1 and 2.

    Each level is one Measurement with max_requests requests, or up to concurrency - 1 more (the worker checks
    genai-bench's stop condition every 50 ms; requests that finished within that interval are kept), no errors,
    and the D scenario's outputs have exactly 16 tokens (ignore_eos reached llama.cpp). HF_TOKEN and a proxy
    password are in the environment while the driver runs: they appear in no file it writes and no progress line.
    """
    model = str(BUILTIN_MODELS["smollm2"].path())
    workload = _workload(scenarios=("D(32,16)", "N(32,8)/(16,4)"), warmup_requests=2)
    events: list[ProgressEvent] = []
    with _engine(LLAMACPP, model, {"n-ctx": 2048, "threads": 2, "n-parallel": 2}, tmp_path) as deployment:
        # Set only now: the launcher's readiness probe would send 127.0.0.1 through the proxy (no no_proxy here).
        monkeypatch.setenv("HF_TOKEN", SECRET_TOKEN)
        monkeypatch.setenv("https_proxy", f"http://tuner:{SECRET_PASSWORD}@proxy.invalid:3128")
        monkeypatch.setenv("HTTP_PROXY", f"http://tuner:{SECRET_PASSWORD}@proxy.invalid:3128")
        started = time.monotonic()
        with GenaiBench() as own:  # its own worker: this environment differs from the module's
            results = run_workload(
                deployment.url,
                LLAMACPP,
                "smollm2",
                TOKENIZER,
                workload,
                tmp_path / "out",
                progress=events.append,
                bench=own,
            )
        elapsed = time.monotonic() - started

    expected = [LevelKey(s, c) for s in workload.scenarios for c in (1, 2)]
    assert list(results) == expected
    for key, result in results.items():
        assert isinstance(result, Measurement), f"{key}: {getattr(result, 'reason', '')}"
        assert workload.max_requests <= len(result.samples) <= workload.max_requests + key.concurrency - 1, key
        assert result.errors == 0 and result.error_codes == {}
        assert 0 < result.run_duration < 60
        tokens = [s.output_tokens for s in result.samples]
        if key.scenario.startswith("D"):
            assert tokens == [16] * len(tokens), f"ignore_eos not honoured: {tokens}"
        else:
            assert all(t is not None and t >= 2 for t in tokens)
    assert elapsed < 240  # no hang: each level has its own deadline

    out = tmp_path / "out"
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["01_D32_16_c1", "02_D32_16_c2", "03_N32_8_16_4_c1", "04_N32_8_16_4_c2"]
    for folder in folders:
        names = {p.name for p in (out / folder).iterdir()}
        assert "experiment_metadata.json" in names and "console.log" in names
        assert any(re.match(r".+_num_concurrency_\d+_time_\d+s\.json$", n) for n in names)
        assert not any(n.endswith((".xlsx", ".png")) for n in names), "the worker skips the report stage"
    assert (out / "genai_bench.log").stat().st_size > 0

    messages = [str(e) for e in events]
    assert "level 2 of 4: D(32,16) at concurrency 2" in messages
    assert "level 4 of 4: N(32,8)/(16,4) at concurrency 2" in messages
    texts = _files_text(out)
    for secret in (SECRET_TOKEN, SECRET_PASSWORD):
        assert not [str(p) for p, text in texts.items() if secret in text]
        assert not [m for m in messages if secret in m]
    assert "***" in texts[out / "driver.log"], "the driver logged the environment additions, masked"
    assert "no_proxy=" in texts[out / "driver.log"], "127.0.0.1 kept away from the proxy"


# ------------------------------------------------------------------------------------------------------ with sim


def test_early_stop_after_the_first_level(tmp_path: Path, bench: GenaiBench) -> None:
    """The study's early stop (a hard SLO broken at the first level); the sim stands in for any real engine."""
    calls: list[LevelKey] = []

    def on_level(key: LevelKey, result: LevelResult) -> str | None:
        calls.append(key)
        return driver.STOP

    workload = _workload(scenarios=("D(32,16)", "D(16,8)"))
    with _sim(tmp_path) as deployment:
        results = run_workload(
            deployment.url, SIM, "sim-model", TOKENIZER, workload, tmp_path / "out", on_level=on_level, bench=bench
        )
    first = LevelKey("D(32,16)", 1)
    assert calls == [first]
    assert list(results) == [first, LevelKey("D(32,16)", 2), LevelKey("D(16,8)", 1), LevelKey("D(16,8)", 2)]
    assert isinstance(results[first], Measurement)
    for key in list(results)[1:]:
        failure = results[key]
        assert isinstance(failure, LevelFailure) and failure.reason.startswith("not run: stopped after level")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["01_D32_16_c1"]


def test_cache_reset_before_every_level(tmp_path: Path, bench: GenaiBench) -> None:
    """The cache reset (vLLM's /reset_prefix_cache, SGLang's /flush_cache): the sim logs each one it receives."""
    workload = _workload(scenarios=("D(32,16)", "N(32,8)/(16,4)"), warmup_requests=2)
    with _sim(tmp_path) as deployment:
        results = run_workload(deployment.url, SIM, "sim-model", TOKENIZER, workload, tmp_path / "out", bench=bench)
        log = deployment.read_log()
    assert all(isinstance(r, Measurement) for r in results.values())
    # The sim's log as a sequence of R (reset) and q (a request): warm-up requests, then each level's reset
    # followed by that level's requests.
    sequence = "".join(
        "R" if "prefix cache cleared" in line else "q"
        for line in log.splitlines()
        if re.search(r"prefix cache cleared|request \d+ chat", line)
    )
    runs = re.findall(r"R|q+", sequence)
    assert runs[0] == "qq", sequence  # the two warm-up requests, before any reset
    assert runs[1:] == ["R", runs[2], "R", runs[4], "R", runs[6], "R", runs[8]], sequence
    assert len(runs) == 9


def test_a_missing_cache_reset_endpoint_is_said_once_and_the_levels_run(tmp_path: Path, bench: GenaiBench) -> None:
    """vLLM without its dev mode answers 404 on /reset_prefix_cache: the sim answers 404 on an unknown path."""
    profile = replace(SIM, endpoints=replace(SIM.endpoints, cache_reset="/no_such_reset"))
    events: list[ProgressEvent] = []
    with _sim(tmp_path) as deployment:
        results = run_workload(
            deployment.url,
            profile,
            "sim-model",
            TOKENIZER,
            _workload(),
            tmp_path / "out",
            progress=events.append,
            bench=bench,
        )
    assert all(isinstance(r, Measurement) for r in results.values())
    notes = [str(e) for e in events if "cache reset" in str(e)]
    assert len(notes) == 1 and "HTTP 404" in notes[0] and "without a cache reset" in notes[0]


def test_a_down_server_fails_fast_with_a_clear_reason(tmp_path: Path, bench: GenaiBench) -> None:
    """An engine that died (nothing listens on its port): every level fails with a reason, quickly.

    With warm-up the driver sees it first; without, genai-bench's own failure (its debug file) is the reason
    and the later levels are not run because the engine does not answer its health check.
    """
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    results = run_workload(url, SIM, "sim-model", TOKENIZER, _workload(), tmp_path / "warm", bench=bench)
    assert time.monotonic() - started < 30
    for result in results.values():
        assert isinstance(result, LevelFailure)
        assert result.reason.startswith("not run: no warm-up request succeeded") and "refused" in result.reason

    started = time.monotonic()
    results = run_workload(
        url, SIM, "sim-model", TOKENIZER, _workload(warmup_requests=0), tmp_path / "cold", bench=bench
    )
    assert time.monotonic() - started < 60
    first, second = results.values()
    assert isinstance(first, LevelFailure) and "could not aggregate" in first.reason
    assert "Connection" in first.reason and first.samples and all(not s.ok for s in first.samples)
    assert isinstance(second, LevelFailure) and "stopped answering /health" in second.reason


def test_after_a_failed_level_a_healthy_engine_gets_the_next_level(tmp_path: Path, bench: GenaiBench) -> None:
    """An engine that answers every request with HTTP 500 but stays healthy (the sim's --error-rate 1 stands in for
    a broken config): each level fails with genai-bench's own reason, and the next level still runs (in a fresh
    worker: the one that failed exits)."""
    with _sim(tmp_path, **{"error-rate": 1.0}) as deployment:
        results = run_workload(
            deployment.url, SIM, "sim-model", TOKENIZER, _workload(warmup_requests=0), tmp_path / "out", bench=bench
        )
    assert len(results) == 2
    for result in results.values():
        assert isinstance(result, LevelFailure) and "could not aggregate" in result.reason, result
        assert "injected internal error" in result.reason and len(result.samples) >= 4


def test_a_hung_level_is_stopped_at_its_deadline(
    tmp_path: Path, bench: GenaiBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A level that outlives its deadline (a hung engine: the sim at 1 s per token) is killed, not waited for.

    The deadline is --max-time-per-run plus a grace; the grace is cut to -55 s here so the test takes seconds.
    """
    monkeypatch.setattr(driver, "LEVEL_GRACE_WORKER", -55.0)  # deadline 5 s
    monkeypatch.setattr(driver, "LEVEL_GRACE_SUBPROCESS", -55.0)
    with _sim(tmp_path, **{"decode-step-ms": 1000}) as deployment:
        started = time.monotonic()
        results = run_workload(
            deployment.url,
            SIM,
            "sim-model",
            TOKENIZER,
            _workload(concurrency=(1,), warmup_requests=0),
            tmp_path / "out",
            bench=bench,
        )
        assert time.monotonic() - started < 60  # deadline 5 s (+ worker start-up and the idle wait)
    (result,) = results.values()
    assert isinstance(result, LevelFailure) and "did not finish within 5 s" in result.reason
    assert _leftovers() == [], "the hung genai-bench was stopped with its process group"


# ------------------------------------------------------------------------------------------ the worker itself


def test_falls_back_to_plain_genai_bench_when_the_worker_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that cannot start (as after a genai-bench upgrade renamed a patched name): plain subprocesses,
    said in the progress and the log. The sim stands in for the engine (plain genai-bench costs ~13 s a level)."""
    fake = tmp_path / "broken_worker.py"
    fake.write_text(
        "import json, sys\n"
        "print(json.dumps({'ready': False, 'error': 'PatchError: genai-bench no longer has "
        "genai_bench.cli.cli.create_workbook'}), flush=True)\n"
        "sys.exit(3)\n"
    )
    monkeypatch.setattr(runner_module, "WORKER_SCRIPT", fake)
    events: list[ProgressEvent] = []
    with _sim(tmp_path) as deployment, GenaiBench() as own:
        results = run_workload(
            deployment.url,
            SIM,
            "sim-model",
            TOKENIZER,
            _workload(concurrency=(2,)),
            tmp_path / "out",
            progress=events.append,
            bench=own,
        )
        assert own.mode == "subprocess"
    (result,) = results.values()
    assert isinstance(result, Measurement) and len(result.samples) >= 4
    notes = [str(e) for e in events if e.stage == "note"]
    assert any("could not start: PatchError" in n and "plain `genai-bench benchmark`" in n for n in notes), notes
    assert "could not start" in (tmp_path / "out" / "driver.log").read_text()
    assert any(p.suffix == ".png" for p in (tmp_path / "out").rglob("*")), "plain genai-bench draws its plots"


def test_worker_refuses_to_start_when_a_patched_name_is_gone() -> None:
    """The start-up check against the installed genai-bench: a renamed attribute is a PatchError, not a silent no-op."""
    code = (
        "import genai_bench, genai_bench.cli.cli as cli\n"
        "from autotuner.bench import genai_bench_worker as worker\n"
        "worker.install_patches()\n"
        "print('patched', cli.manage_run_time.__module__)\n"
        "del cli.create_workbook\n"
        "try:\n"
        "    worker.install_patches()\n"
        "except worker.PatchError as error:\n"
        "    print('PatchError:', error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert "patched autotuner.bench.genai_bench_worker" in done.stdout
    assert "PatchError: genai-bench no longer has genai_bench.cli.cli.create_workbook" in done.stdout


def test_worker_protocol_survives_bad_requests_and_never_prompts(tmp_path: Path) -> None:
    """A bad line gets an error reply; a missing required option fails instead of prompting on the protocol."""
    process = subprocess.Popen(
        [sys.executable, str(runner_module.WORKER_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["ready"] is True and ready["genai_bench"]
        process.stdin.write("not json\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["status"] == 2
        request = {"args": ["--api-backend", "vllm"], "cwd": str(tmp_path), "console": str(tmp_path / "console.log")}
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        reply = json.loads(process.stdout.readline())
        assert reply["status"] != 0 and reply["error"]
        assert process.wait(timeout=30) == 0, "after a failed benchmark the worker exits"
    finally:
        from autotuner.launch.process import stop_group

        stop_group(process.pid, grace=5.0)
        process.wait(timeout=10)
