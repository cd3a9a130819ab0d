"""The genai-bench driver's pure parts: levels, options, environment, masking, gauges, the worker's run clock.

No process runs here (the real runs are in tests/integration/test_bench_driver.py). The worker module is imported
as a plain module: it imports only the standard library at module level (genai-bench only inside ``main``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from autotuner.bench import engine_client
from autotuner.bench.driver import (
    _masker,
    bench_environment,
    genai_bench_args,
    level_folder_name,
    max_time_minutes,
    plan_levels,
    run_workload,
)
from autotuner.bench.genai_bench_worker import PATCHED, make_manage_run_time
from autotuner.bench.measurement import LevelKey
from autotuner.engines.runtimes import LLAMACPP, SGLANG, VLLM
from autotuner.spec.models import Workload


def workload(**fields: Any) -> Workload:
    values: dict[str, Any] = dict(scenarios=("D(64,64)", "N(480,240)/(300,150)"), concurrency=(8, 1, 4))
    values.update(fields)
    return Workload(**values)


def args_for(w: Workload, profile: Any = LLAMACPP) -> list[str]:
    return genai_bench_args(
        url="http://127.0.0.1:8000/",
        profile=profile,
        served_name="smollm2",
        tokenizer="/tok",
        workload=w,
        key=LevelKey("D(64,64)", 4),
        experiment_dir=Path("/out"),
        folder_name="02_D64_64_c4",
        log_dir=Path("/out"),
    )


def test_levels_run_scenario_by_scenario_with_ascending_concurrency() -> None:
    assert [str(k) for k in plan_levels(workload())] == [
        "D(64,64)@1", "D(64,64)@4", "D(64,64)@8",
        "N(480,240)/(300,150)@1", "N(480,240)/(300,150)@4", "N(480,240)/(300,150)@8",
    ]  # fmt: skip


@pytest.mark.parametrize(("seconds", "minutes"), [(1, 1), (30, 1), (60, 1), (61, 2), (120, 2), (121, 3)])
def test_max_time_is_whole_minutes_rounded_up(seconds: int, minutes: int) -> None:
    assert max_time_minutes(workload(max_time=timedelta(seconds=seconds))) == minutes


def test_every_required_option_in_an_order_click_accepts() -> None:
    args = args_for(workload(max_time=timedelta(seconds=90), max_requests=12))
    options = dict(zip(args[::2], args[1::2], strict=True))
    assert options == {
        "--api-backend": "vllm",  # sends ignore_eos
        "--api-base": "http://127.0.0.1:8000",
        "--api-key": "dummy",
        "--api-model-name": "smollm2",
        "--model-tokenizer": "/tok",
        "--task": "text-to-text",
        "--traffic-scenario": "D(64,64)",
        "--num-concurrency": "4",
        "--max-requests-per-run": "12",
        "--max-time-per-run": "2",
        "--server-engine": "LlamaCPP",
        "--experiment-base-dir": "/out",
        "--experiment-folder-name": "02_D64_64_c4",
        "--log-dir": "/out",
    }
    assert args.index("--api-backend") < args.index("--api-key")
    assert args.index("--task") < args.index("--traffic-scenario")


def test_backend_and_engine_come_from_the_profile() -> None:
    assert args_for(workload(), SGLANG)[1] == "sglang"
    assert "SGLang" in args_for(workload(), SGLANG)
    assert args_for(workload(), VLLM)[1] == "vllm"


def test_request_params_are_typed_json() -> None:
    args = args_for(workload(request_params={"temperature": 0.0, "top_k": 5, "seed": "x"}))
    value = args[args.index("--additional-request-params") + 1]
    assert value == '{"temperature": 0.0, "top_k": 5, "seed": "x"}'
    assert "--additional-request-params" not in args_for(workload())


def test_ignore_eos_false_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ignore_eos"):
        run_workload(
            "http://127.0.0.1:1",
            LLAMACPP,
            "m",
            "gpt2",
            workload(request_params={"ignore_eos": False}),
            tmp_path,
        )


def test_level_folders_sort_in_run_order_and_name_the_level() -> None:
    assert level_folder_name(3, LevelKey("N(480,240)/(300,150)", 16)) == "03_N480_240_300_150_c16"
    assert level_folder_name(12, LevelKey("U(48,24)", 1)) == "12_U48_24_c1"


def test_environment_local_tokenizer_goes_offline_and_the_ui_is_off(tmp_path: Path) -> None:
    env, additions = bench_environment(str(tmp_path), "http://127.0.0.1:8000", {"PATH": "/bin"})
    assert additions == {"ENABLE_UI": "false", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    assert env["PATH"] == "/bin"
    env, additions = bench_environment("HuggingFaceTB/SmolLM2-135M", "http://127.0.0.1:8000", {})
    assert "HF_HUB_OFFLINE" not in additions and env["ENABLE_UI"] == "false"


def test_environment_passes_proxies_and_token_and_keeps_loopback_off_the_proxy() -> None:
    source = {"https_proxy": "http://u:secretpw@proxy:3128", "HF_TOKEN": "hf_abcdefgh", "no_proxy": "corp.internal"}
    env, _ = bench_environment("org/tok", "http://127.0.0.1:8000", source)
    assert env["https_proxy"] == env["HTTPS_PROXY"] == "http://u:secretpw@proxy:3128"
    assert env["HF_TOKEN"] == env["HUGGING_FACE_HUB_TOKEN"] == "hf_abcdefgh"
    assert env["no_proxy"] == env["NO_PROXY"] == "corp.internal,127.0.0.1,localhost"
    env, _ = bench_environment("org/tok", "http://engine.corp:8000", source)
    assert env["no_proxy"] == env["NO_PROXY"] == "corp.internal"  # a remote engine may need the proxy
    env, additions = bench_environment("org/tok", "http://127.0.0.1:8000", {"HF_TOKEN": "hf_abcdefgh"})
    assert "no_proxy" not in additions  # no proxy, nothing to keep away from


def test_masker_covers_secrets_as_they_appear_inside_json() -> None:
    masker = _masker({"HF_TOKEN": 'hf_quo"te\\secret'})
    text = '{"error_message": "token hf_quo\\"te\\\\secret rejected"}'
    assert "secret" not in masker.mask(text)


def test_scenario_shapes_for_warm_up() -> None:
    assert engine_client.scenario_shape("D(64,32)") == (64, 32)
    assert engine_client.scenario_shape("N(480,240)/(300,150)") == (480, 300)
    assert engine_client.scenario_shape("U(100,200)/(10,30)") == (150, 20)
    assert engine_client.scenario_shape("U(48,24)") == (24, 12)
    assert engine_client.scenario_shape("E(64)") is None


def test_busy_gauges_of_each_engine() -> None:
    llamacpp = "# HELP x\nllamacpp:requests_processing 2\nllamacpp:requests_deferred 1\nllamacpp:n_decode_total 9\n"
    vllm = 'vllm:num_requests_running{model_name="m"} 0.0\nvllm:num_requests_waiting{model_name="m"} 0.0\n'
    sglang = 'sglang:num_running_reqs{a="b"} 3\nsglang:num_queue_reqs{a="b"} 0\n'
    from autotuner.engines.runtimes import LLAMACPP, SGLANG, SIM, VLLM

    assert engine_client.busy_requests(llamacpp, LLAMACPP.endpoints.busy_gauges) == 3
    assert engine_client.busy_requests(vllm, VLLM.endpoints.busy_gauges) == 0
    assert engine_client.busy_requests(sglang, SGLANG.endpoints.busy_gauges) == 3
    assert engine_client.busy_requests("some_other_metric 1\n", SIM.endpoints.busy_gauges) is None
    assert engine_client.busy_requests(llamacpp, ()) is None  # a profile without gauges: the fixed pause instead


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:1", True),
        ("http://[::1]:8", True),
        ("http://10.0.0.1", False),
    ],
)
def test_loopback(url: str, loopback: bool) -> None:
    assert engine_client.is_loopback(url) is loopback


# ------------------------------------------------------------------------- the worker's manage_run_time


class _Clock:
    """A fake gevent whose sleep advances a fake monotonic clock, and a runner whose count follows a schedule."""

    def __init__(self, completions: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0.0
        self.completions = completions
        import time

        monkeypatch.setattr(time, "monotonic", lambda: self.now)  # the worker reads time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    @property
    def runner(self) -> Any:
        clock = self

        class Total:
            @property
            def num_requests(self) -> int:
                return sum(1 for t in clock.completions if t <= clock.now)

        class Stats:
            total = Total()

        class Runner:
            stats = Stats()

        return Runner()


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_run_clock_stops_within_a_poll_of_the_last_request(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock([0.6 * i for i in range(1, 30)], monkeypatch)  # a request finishes every 0.6 s
    logger = _Logger()
    seconds = make_manage_run_time(clock, logger, poll=0.05)(60, 12, clock)
    assert 7.2 <= clock.now < 7.2 + 0.05 + 1e-9  # the 12th request finished at 7.2 s
    assert clock.runner.stats.total.num_requests == 12  # genai-bench's own 1 s clock would have counted 13
    assert seconds == 7 and "12 requests" in logger.lines[0]


def test_run_clock_with_genai_bench_s_one_second_poll_overshoots(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock([0.6 * i for i in range(1, 30)], monkeypatch)
    assert make_manage_run_time(clock, _Logger(), poll=1.0)(60, 12, clock) == 8
    assert clock.runner.stats.total.num_requests == 13


def test_run_clock_ends_at_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock([], monkeypatch)  # nothing ever finishes
    assert make_manage_run_time(clock, _Logger(), poll=0.05)(60, 12, clock) == 60
    assert 60 <= clock.now < 60.06


def test_patch_list_is_small_and_in_one_module() -> None:
    assert len(PATCHED) <= 8
    assert {module for module, _ in PATCHED} == {"genai_bench.cli.cli"}


def test_the_driver_never_imports_genai_bench_in_the_tuner() -> None:
    """genai-bench's import monkey-patches the whole process with gevent: only the worker process may do it."""
    import subprocess
    import sys

    code = (
        "import sys; import autotuner.bench.driver, autotuner.bench.runner, autotuner.bench.genai_bench_worker; "
        "print('genai_bench' in sys.modules, 'gevent' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
