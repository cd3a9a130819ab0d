"""How a shared PostgreSQL study scales: N = 1, 2, 4 ``autotuner tune`` workers on one grid study.

Each N gets a fresh study (a spec named after N) of ``--configs`` grid points with the ``sim`` engine and real
genai-bench; the N workers start together with ``--storage URL --resume`` and the wall time runs from their start
to the last one's exit (worker start-up included: Python, genai-bench's imports). Then, from the storage:

    wall        seconds for the whole study
    speed-up    wall(N=1) / wall(N)          (target >= 0.9 N)
    duplicates  measurements beyond the first of a config   (target 0)
    lost        grid configs never measured                 (target 0)

The URL comes from ``--url`` or ``AUTOTUNER_TEST_POSTGRES_URL`` (start a throwaway server with
``.ci/postgres.sh start``; stop it with ``.ci/postgres.sh stop``)::

    python benchmarks/study_scale.py --workers 1 2 4 --configs 32                 # --trial sleep (default)
    python benchmarks/study_scale.py --workers 1 2 4 --configs 16 --trial sim

Two kinds of trial:
- ``sleep`` (default) measures the study itself: each worker process runs the real ``Study`` against the real
  PostgreSQL (asks, claims, heartbeats, census), and each trial holds its worker for ``--seconds`` without using
  the CPU, standing for a measurement on that worker's own GPU machine. This is the deployment the shared study
  is for (one worker per GPU runner), and it is what 2 cores here can show without the cores being the limit.
  ``span`` is the time from the first trial's start to the last one's end, read from the records (worker
  start-up, i.e. Python and Optuna imports, excluded); ``wall`` includes it.
- ``sim`` runs ``autotuner tune`` workers with the sim engine and real genai-bench: on a machine with few cores
  that speed-up is bounded by the cores, not by the study (each worker runs an engine and a genai-bench process).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import optuna  # noqa: E402

from autotuner.study import RECORD_ATTR  # noqa: E402

SPEC = """\
name: {name}
model: {{id: builtin:smollm2}}
engine: {{runtime: sim, args: {{time-scale: {scale}, decode-step-ms: 20}}, startup_timeout: 60s}}
parameters:
  max-num-seqs: {values}
workload: {{scenarios: ["D(64,32)"], concurrency: [1, 4], max_requests: 8, max_time: 1m, warmup_requests: 1}}
slo:
  ttft: {{p90: 10s}}
objective: {{maximize: output_throughput}}
search: {{strategy: grid, seed: 1, baseline: {{max-num-seqs: 1}}, racing: false}}
"""


def sleep_worker(spec: Path, url: str, seconds: float) -> int:
    """One worker of the ``sleep`` kind: the real Study on the shared storage; each trial sleeps ``seconds``."""
    from autotuner.launch.base import Deployment, Launcher, LaunchRequest
    from autotuner.results import ObjectiveRecord, Stage, TrialRecord
    from autotuner.space import Config
    from autotuner.study import Study, StudyOptions
    from autotuner.trial import TrialContext
    from autotuner.validation import load_spec

    class NoLaunch(Launcher):
        kind = "none"

        def start(self, request: LaunchRequest) -> Deployment:
            raise AssertionError("the sleep trial launches nothing")

    loaded = load_spec(spec)
    name = str(loaded.spec.objective[0])

    def trial(
        _ctx: TrialContext, number: int, config: Config, *, baseline: bool = False, repeat: int = 0
    ) -> TrialRecord:
        started = time.time()
        time.sleep(seconds)  # the measurement, on this worker's own GPU
        value = float(config.as_dict()["max-num-seqs"])
        return TrialRecord(
            number=number, config=config.as_dict(), config_id=config.id, config_hash=config.hash, baseline=baseline,
            outcome="feasible", objectives=[ObjectiveRecord(name=name, value=value)], repeat=repeat,
            stages=[Stage(name="measure", started=started, ended=time.time())],
        )  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="scale-worker-") as scratch:
        context = TrialContext(
            loaded=loaded, run_id="scale", out_dir=Path(scratch), launcher=NoLaunch(), bench=lambda **_: {}
        )
        options = StudyOptions(storage=url, resume=True, heartbeat=5)
        Study(loaded, context, options, run_trial=trial).run()
    return 0


def run(url: str, workers: int, configs: int, scale: float, work: Path, kind: str, seconds: float) -> Figures:
    name = f"scale-n{workers}-{uuid.uuid4().hex[:6]}"
    spec = work / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, scale=scale, values=list(range(1, configs + 1))))
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(work / "state")}
    if kind == "sleep":
        command = [sys.executable, __file__, "worker", str(spec), "--url", url, "--seconds", str(seconds)]
    else:
        command = [sys.executable, "-m", "autotuner", "tune", str(spec), "--storage", url, "--resume"]
        command += ["--heartbeat", "5"]
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            command + ([] if kind == "sleep" else ["--report-dir", str(work / f"{name}-{i}")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for i in range(workers)
    ]
    codes = [p.wait() for p in processes]
    wall = time.monotonic() - started
    if any(codes):
        print(f"  N={workers}: worker exit codes {codes}", file=sys.stderr)
    study_name = next(s.study_name for s in optuna.get_all_study_summaries(url) if s.study_name.startswith(name))
    counts: Counter[str] = Counter()
    starts: list[float] = []
    ends: list[float] = []
    for trial in optuna.load_study(study_name=study_name, storage=url).get_trials(deepcopy=False):
        record = trial.user_attrs.get(RECORD_ATTR)
        if isinstance(record, dict):
            counts[str(record["config_hash"])] += 1
            starts += [float(stage["started"]) for stage in record.get("stages", [])]
            ends += [float(stage["ended"]) for stage in record.get("stages", [])]
    duplicates = sum(n - 1 for n in counts.values())
    lost = configs - len(counts)
    span = max(ends) - min(starts) if starts and ends else wall
    return Figures(wall, span, duplicates, lost)


@dataclass(frozen=True)
class Figures:
    wall: float  # seconds from the workers' start to the last one's exit
    span: float  # seconds from the first trial's start to the last trial's end
    duplicates: int
    lost: int


def main() -> int:
    if sys.argv[1:2] == ["worker"]:
        worker = argparse.ArgumentParser(prog="study_scale.py worker")
        worker.add_argument("spec", type=Path)
        worker.add_argument("--url", required=True)
        worker.add_argument("--seconds", type=float, required=True)
        parsed = worker.parse_args(sys.argv[2:])
        return sleep_worker(parsed.spec, parsed.url, parsed.seconds)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("AUTOTUNER_TEST_POSTGRES_URL"))
    parser.add_argument("--trial", choices=("sleep", "sim"), default="sleep", help="see the module docstring")
    parser.add_argument("--seconds", type=float, default=2.0, help="sleep trials: seconds one measurement takes")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--configs", type=int, default=16)
    parser.add_argument("--time-scale", type=float, default=0.5, help="the sim engine's time scale (1 = real time)")
    args = parser.parse_args()
    if not args.url:
        print("no PostgreSQL URL: pass --url or set AUTOTUNER_TEST_POSTGRES_URL (.ci/postgres.sh start)")
        return 2
    optuna.storages.RDBStorage(args.url).engine.dispose()  # tables created once, before the workers race
    what = f"{args.seconds:g} s sleep trials" if args.trial == "sleep" else f"sim time-scale {args.time_scale}"
    print(f"{args.configs} configs, {what}, {os.cpu_count()} CPU cores")
    print(
        f"{'N':>3} {'wall s':>8} {'span s':>8} {'speed-up wall':>14} {'span':>6} {'target':>7} {'dup':>4} {'lost':>5}"
    )
    base: Figures | None = None
    with tempfile.TemporaryDirectory(prefix="autotuner-scale-") as tmp:
        for n in args.workers:
            figures = run(args.url, n, args.configs, args.time_scale, Path(tmp), args.trial, args.seconds)
            base = base or Figures(
                figures.wall * args.workers[0], figures.span * args.workers[0], figures.duplicates, figures.lost
            )
            print(
                f"{n:>3} {figures.wall:>8.1f} {figures.span:>8.1f} {base.wall / figures.wall:>14.2f} "
                f"{base.span / figures.span:>6.2f} {0.9 * n:>7.1f} {figures.duplicates:>4} {figures.lost:>5}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
