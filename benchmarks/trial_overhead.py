"""How much time a trial spends outside the engine's start, the warm-up and the load: the benchmark tool's overhead.

Runs ``--trials`` trials of the embedded default shape end to end, the way a study does (the shape of
``tuning_specs/smollm2-cpu.yaml``): launch llama.cpp (xllamacpp) serving SmolLM2-135M with the process launcher,
wait until ready, then :func:`autotuner.bench.driver.run_workload` (warm-up, every level with genai-bench, cache
reset where the engine has one), then stop the engine. Per trial it prints::

    wall      launch -> engine stopped
    start     launch -> ready (health check answers 200)
    warm-up   the driver's warm-up requests
    load      the sum of the levels' own run_duration (genai-bench's measured load window)
    overhead  wall - start - warm-up - load: genai-bench outside its load, the driver, stopping the engine

and then the mean overhead against the 3 s target. ``--plain`` runs genai-bench as a plain ``genai-bench
benchmark`` subprocess per level (what it costs without the worker); the default reuses one worker process for
all trials, as a study does (one :class:`~autotuner.bench.runner.GenaiBench` per study), and prints its one-off
start-up separately (it is paid once per study, not per trial)::

    python benchmarks/trial_overhead.py              # worker (the default)
    python benchmarks/trial_overhead.py --plain      # one genai-bench process per level
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from autotuner.bench.driver import ProgressEvent, bench_environment, run_workload  # noqa: E402
from autotuner.bench.measurement import Measurement  # noqa: E402
from autotuner.bench.runner import GenaiBench  # noqa: E402
from autotuner.bench.tokenizer import resolve_tokenizer  # noqa: E402
from autotuner.catalog import BUILTIN_MODELS  # noqa: E402
from autotuner.engines.runtimes import LLAMACPP  # noqa: E402
from autotuner.launch import LaunchRequest, ProcessLauncher, wait_until_ready  # noqa: E402
from autotuner.spec.models import Workload  # noqa: E402

TARGET_SECONDS = 3.0
WORKLOAD = Workload(  # tuning_specs/smollm2-cpu.yaml
    task="text-to-text",
    scenarios=("D(64,64)",),
    concurrency=(1, 4),
    max_requests=12,
    max_time=timedelta(minutes=1),
    warmup_requests=2,
)
FLAGS = {"n-ctx": 4096, "n-parallel": 4, "threads": 2}


@dataclass(frozen=True)
class TrialTimes:
    wall: float
    start: float
    warmup: float
    load: float
    levels: int
    requests: int
    stop: float

    @property
    def overhead(self) -> float:
        return self.wall - self.start - self.warmup - self.load


def run_trial(number: int, bench: GenaiBench, scratch: Path) -> TrialTimes:
    warmup = [0.0]

    def progress(event: ProgressEvent) -> None:
        if event.stage == "warmup" and event.seconds is not None:
            warmup[0] += event.seconds
        print(f"    {event}", flush=True)

    request = LaunchRequest(
        run_id="trial-overhead",
        name=f"trial-{number}",
        profile=LLAMACPP,
        model=str(BUILTIN_MODELS["smollm2"].path()),
        served_name="smollm2",
        flags=FLAGS,
        env={},
        log_dir=scratch / f"trial-{number}",
        python=sys.executable,
    )
    began = time.monotonic()
    deployment = ProcessLauncher().start(request)
    try:
        start = wait_until_ready(deployment, LLAMACPP, timeout=120)
        start = time.monotonic() - began
        results = run_workload(
            deployment.url,
            LLAMACPP,
            "smollm2",
            "builtin:smollm2",
            WORKLOAD,
            scratch / f"trial-{number}" / "bench",
            progress=progress,
            bench=bench,
        )
    finally:
        stopping = time.monotonic()
        deployment.stop()
        stopped = time.monotonic()
    measurements = [r for r in results.values() if isinstance(r, Measurement)]
    if len(measurements) != len(results):
        failed = {str(k): getattr(r, "reason", "") for k, r in results.items() if not isinstance(r, Measurement)}
        raise SystemExit(f"trial {number}: levels failed: {failed}")
    return TrialTimes(
        wall=stopped - began,
        start=start,
        warmup=warmup[0],
        load=sum(m.run_duration for m in measurements),
        levels=len(measurements),
        requests=sum(len(m.samples) for m in measurements),
        stop=stopped - stopping,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--plain", action="store_true", help="plain `genai-bench benchmark` subprocess per level")
    parser.add_argument("--keep", type=Path, default=None, help="keep the trials' files in this folder")
    args = parser.parse_args(argv)

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="trial-overhead-"))
    scratch.mkdir(parents=True, exist_ok=True)
    mode = "plain genai-bench subprocess per level" if args.plain else "genai-bench worker"
    print(f"{args.trials} trial(s) of llama.cpp + SmolLM2, {WORKLOAD.scenarios} x {WORKLOAD.concurrency}, ", end="")
    print(f"max_requests {WORKLOAD.max_requests}; {mode}; files in {scratch}", flush=True)
    times: list[TrialTimes] = []
    with GenaiBench(use_worker=not args.plain) as bench:
        if not args.plain:
            # Once per study: the worker imports genai-bench (measured here, apart from the trials).
            began = time.monotonic()
            env, _ = bench_environment(resolve_tokenizer("builtin:smollm2", None), "http://127.0.0.1")
            problem = bench.prepare(env, scratch / "genai-bench-worker.log")
            print(f"worker start-up (once per study): {time.monotonic() - began:.2f} s {problem or ''}", flush=True)
        for number in range(1, args.trials + 1):
            print(f"trial {number}:", flush=True)
            trial = run_trial(number, bench, scratch)
            times.append(trial)
            print(
                f"  wall {trial.wall:6.2f} s | start {trial.start:5.2f} s | warm-up {trial.warmup:5.2f} s | "
                f"load {trial.load:6.2f} s ({trial.levels} levels, {trial.requests} requests) | "
                f"overhead {trial.overhead:6.2f} s (engine stop {trial.stop:.2f} s)",
                flush=True,
            )
    mean = statistics.mean(t.overhead for t in times)
    verdict = "within" if mean <= TARGET_SECONDS else "NOT within"
    print(
        f"mean overhead per trial ({mode}): {mean:.2f} s over {len(times)} trial(s): {verdict} the {TARGET_SECONDS:.0f} s target"
    )
    return 0 if mean <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
