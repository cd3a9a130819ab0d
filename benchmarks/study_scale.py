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

    python benchmarks/study_scale.py --workers 1 2 4 --configs 16

On a machine with few cores the speed-up is bounded by the cores, not by the study: each worker runs an engine
and a genai-bench process, and the sim engine sleeps most of its time but genai-bench does not.
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
search: {{strategy: grid, seed: 1, baseline: {{max-num-seqs: 1}}}}
"""


def run(url: str, workers: int, configs: int, scale: float, work: Path) -> tuple[float, int, int]:
    name = f"scale-n{workers}-{uuid.uuid4().hex[:6]}"
    spec = work / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, scale=scale, values=list(range(1, configs + 1))))
    env = {**os.environ, "AUTOTUNER_STATE_DIR": str(work / "state")}
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "autotuner", "tune", str(spec), "--report-dir", str(work / f"{name}-{i}")]
            + ["--storage", url, "--resume", "--heartbeat", "5"],
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
    for trial in optuna.load_study(study_name=study_name, storage=url).get_trials(deepcopy=False):
        record = trial.user_attrs.get(RECORD_ATTR)
        if isinstance(record, dict):
            counts[str(record["config_hash"])] += 1
    duplicates = sum(n - 1 for n in counts.values())
    lost = configs - len(counts)
    return wall, duplicates, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("AUTOTUNER_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--configs", type=int, default=16)
    parser.add_argument("--time-scale", type=float, default=0.5, help="the sim engine's time scale (1 = real time)")
    args = parser.parse_args()
    if not args.url:
        print("no PostgreSQL URL: pass --url or set AUTOTUNER_TEST_POSTGRES_URL (.ci/postgres.sh start)")
        return 2
    optuna.storages.RDBStorage(args.url).engine.dispose()  # tables created once, before the workers race
    print(f"{args.configs} configs, sim time-scale {args.time_scale}, {os.cpu_count()} CPU cores")
    print(f"{'N':>3} {'wall s':>8} {'speed-up':>9} {'target':>7} {'dup':>4} {'lost':>5}")
    base: float | None = None
    with tempfile.TemporaryDirectory(prefix="autotuner-scale-") as tmp:
        for n in args.workers:
            wall, duplicates, lost = run(args.url, n, args.configs, args.time_scale, Path(tmp))
            base = base or wall * args.workers[0]
            speedup = base / wall
            print(f"{n:>3} {wall:>8.1f} {speedup:>9.2f} {0.9 * n:>7.1f} {duplicates:>4} {lost:>5}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
