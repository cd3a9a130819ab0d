"""Regression detection accuracy: false alarms on A/A comparisons, detection of a known 10% slowdown on A/B.

The regression verdict (``autotuner/compare.py``) must neither cry wolf when nothing changed nor miss a real
slowdown. This script measures both on real engines, through the same trial pipeline ``autotuner tune --baseline``
uses (``Study.measure_again``)::

    python benchmarks/regression_accuracy.py                    # the sim engine double (a few minutes)
    python benchmarks/regression_accuracy.py --engine cpu --pool 12   # llama.cpp on this CPU (~20 s a trial)
    python benchmarks/regression_accuracy.py --engine cpu --cpu-fixed threads=1 --cpu-throttle 90 --cpu-requests 16
    python benchmarks/regression_accuracy.py --from POOL.json   # analyse a recorded pool again

How: a pool of rounds is measured, each round three trials in a rotating order (every permutation of the three
in turn, so no arm always goes first): config A, config A again (A'), and config B, a copy of A made slower by a
known amount (sim: ``decode-step-ms`` 20 -> 22.2222 ms: every step 1/0.9 longer, so 10% less throughput; the pool measures it; cpu: a
flag, by default ``threads-batch`` 2 -> 1, whose true effect the pool itself measures and prints; or, with
``--cpu-throttle PCT``, the engine's CPU time capped by a cgroup quota, a slowdown known by construction). Then many
comparisons are drawn from the pool: R rounds at random (without replacement), A vs A' (an A/A comparison: any
``regressed`` is a false alarm) and A vs B (A/B: ``regressed`` is a detection), judged exactly as ``autotuner
compare`` judges (objective, SLO metrics, SLO findings, overall verdict). Printed per R: the false-alarm rate,
the A/A inconclusive rate, the detection rate, and the A/B inconclusive rate. Targets (issue 8): at most 5% false
alarms and at least 95% detection of a 10% regression at the default number of rounds (ab.DEFAULT_ROUNDS).

Subsets of one pool are not independent experiments (they share rounds): the rates describe this pool's noise,
measured on this machine at this time. The pool file (``--save``) keeps every record, so the analysis can be
rerun on it with other rules or round counts without measuring again.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autotuner.ab import DEFAULT_ROUNDS
from autotuner.compare import Verdict, objective_verdicts, overall, slo_findings, slo_metric_verdicts
from autotuner.results import TrialRecord
from autotuner.space import Config
from autotuner.tune import TuneOptions, tune_session
from autotuner.validation import load_spec

ROOT = Path(__file__).resolve().parent.parent

SIM_SPEC = """\
name: regression-accuracy-sim
model: {id: builtin:smollm2}
engine: {runtime: sim, args: {time-scale: 0.5, decode-step-ms-per-seq: 0, max-num-seqs: 4}, startup_timeout: 30s}
parameters:
  decode-step-ms: [20.0, 22.2222]
workload: {scenarios: ["D(64,32)"], concurrency: [4], max_requests: 16, max_time: 1m, warmup_requests: 1}
slo:
  ttft: {p90: 2s}
  e2e_latency: {p99: 10s}
objective: {maximize: output_throughput}
search: {strategy: grid, racing: false}
regression: {threshold: 5%, confidence: 95%}
"""
SIM_A, SIM_B = {"decode-step-ms": 20.0}, {"decode-step-ms": 22.2222}

# tuning_specs/smollm2-cpu.yaml with its best-known config (benchmarks/data/smollm2-cpu-landscape.json) fixed, one
# flag left to vary between A and B, and a shorter workload (cpu_spec).
CPU_A = {"n-batch": 2048, "n-parallel": 4, "threads": 2}


# --cpu-throttle: B is A with the engine's CPU time capped by the kernel (a cgroup-v1 CFS quota over a 10 ms
# period), so its slowdown is known by construction and lies in the engine's own critical path (a proxy delaying
# the stream would not slow the engine). The engine is started through this wrapper as ``engine.python``; the quota
# comes from a tuned engine environment variable, so A and B are two configs of one spec measured alike. A's
# cgroup has no quota: both arms run in a cgroup of their own. Needs root and the cgroup-v1 cpu controller.
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
QUOTA_VARIABLE = "AUTOTUNER_BENCH_CPU_QUOTA"
THROTTLE_WRAPPER = f"""#!/bin/bash
# Stands for a slower engine build: runs the engine (python "$@") with its CPU time capped at ${QUOTA_VARIABLE}% of
# one core per 10 ms (100: no cap). Written by benchmarks/regression_accuracy.py.
set -e
quota=${{{QUOTA_VARIABLE}:-}}
if [ -n "$quota" ]; then
  group={CGROUP_CPU}/autotuner-bench-$$
  mkdir "$group"
  echo 10000 > "$group/cpu.cfs_period_us"
  if [ "$quota" -lt 100 ]; then echo $((quota * 100)) > "$group/cpu.cfs_quota_us"; fi
  echo $$ > "$group/cgroup.procs"
fi
exec {sys.executable} "$@"
"""


def throttle_wrapper(work: Path) -> Path:
    """Write the engine wrapper of ``--cpu-throttle``; refuse early where cgroup-v1's cpu controller is missing."""
    if not (CGROUP_CPU / "cpu.cfs_quota_us").exists() or not os.access(CGROUP_CPU, os.W_OK):
        raise SystemExit(f"--cpu-throttle needs root and a writable cgroup-v1 cpu controller at {CGROUP_CPU}")
    path = work / "throttled-python"
    path.write_text(THROTTLE_WRAPPER, encoding="utf-8")
    path.chmod(0o755)
    return path


def remove_throttle_groups() -> None:
    """The wrapper's cgroups, once their engines have exited (an empty cgroup is removed with rmdir)."""
    for group in CGROUP_CPU.glob("autotuner-bench-*"):
        with contextlib.suppress(OSError):
            group.rmdir()


def cpu_spec(
    flag: str, a_value: str, b_value: str, fixed: dict[str, object], python: Path | None = None, requests: int = 8
) -> str:
    text = (ROOT / "tuning_specs" / "smollm2-cpu.yaml").read_text(encoding="utf-8")
    head, _, rest = text.partition("parameters:")
    _, _, tail = rest.partition("constraints:")
    tail = tail.split("\n", 1)[1]
    lines = "".join(f"  {k}: [{v}]\n" for k, v in fixed.items())
    text = f"{head}parameters:\n{lines}  {flag}: [{a_value}, {b_value}]\n{tail}"
    text = text.replace("name: smollm2-cpu", "name: regression-accuracy-cpu")
    if python is not None:
        text = text.replace("  launcher: process\n", f"  launcher: process\n  python: {python}\n")
    # One level of 8 requests by default (~10 s a trial on an idle 2-core machine) keeps a pool affordable; relaxed SLOs keep a
    # loaded machine from making every measurement infeasible (this measures the statistics, not the SLOs).
    text = text.replace("concurrency: [1, 4]", "concurrency: [4]").replace(
        "max_requests: 12", f"max_requests: {requests}"
    )
    text = text.replace("warmup_requests: 2", "warmup_requests: 1").replace("ttft: {p90: 2s}", "ttft: {p90: 10s}")
    text = text.replace("e2e_latency: {p99: 10s}", "e2e_latency: {p99: 60s}")
    return text.replace("search: {strategy: auto", "search: {strategy: grid, racing: false")


@dataclass
class Pool:
    """Rounds of (A, A', B) records, and what they were measured with."""

    engine: str
    a: dict[str, object]
    b: dict[str, object]
    rounds: list[tuple[TrialRecord, TrialRecord, TrialRecord]]
    threshold: float
    confidence: float

    def save(self, path: Path) -> None:
        data = {
            "engine": self.engine,
            "a": self.a,
            "b": self.b,
            "threshold": self.threshold,
            "confidence": self.confidence,
            "rounds": [[r.model_dump(mode="json") for r in round_] for round_ in self.rounds],
        }
        path.write_text(json.dumps(data) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Pool:
        data = json.loads(path.read_text(encoding="utf-8"))
        rounds = [
            (
                TrialRecord.model_validate(r[0]),
                TrialRecord.model_validate(r[1]),
                TrialRecord.model_validate(r[2]),
            )
            for r in data["rounds"]
        ]
        return cls(data["engine"], data["a"], data["b"], rounds, data["threshold"], data["confidence"])


def measure_pool(spec_text: str, a: dict[str, object], b: dict[str, object], rounds: int, engine: str) -> Pool:
    """Measure ``rounds`` rounds of A, A', B through a tuning session (the trial pipeline tune uses)."""
    work = Path(tempfile.mkdtemp(prefix="regression-accuracy-"))
    spec_path = work / "spec.yaml"
    spec_path.write_text(spec_text, encoding="utf-8")
    loaded = load_spec(str(spec_path))
    config_a, config_b = Config.of(a), Config.of(b)  # type: ignore[arg-type]
    orders = list(itertools.permutations(range(3)))
    pool: list[tuple[TrialRecord, TrialRecord, TrialRecord]] = []
    started = time.monotonic()
    with tune_session(loaded, TuneOptions(report_dir=work / "reports"), lambda _text: None) as session:
        study = session.study
        study.start()
        # A throwaway first measurement: the session's first trial shares the CPU with the genai-bench worker's
        # start (imports, ~4 s), which on 2 cores costs it most of its throughput.
        study.measure_again(config_a, 1)
        repeat = {config_a.hash: 2, config_b.hash: 1}
        for index in range(rounds):
            got: dict[int, TrialRecord] = {}
            for arm in orders[index % len(orders)]:
                config = config_b if arm == 2 else config_a
                record = study.measure_again(config, repeat[config.hash])
                repeat[config.hash] += 1
                if record is None:
                    raise RuntimeError("a measurement was claimed by another worker: use a fresh state")
                got[arm] = record
            pool.append((got[0], got[1], got[2]))
            values = " ".join(f"{got[k].objective or 0:.1f}" for k in range(3))
            elapsed = time.monotonic() - started
            print(f"round {index + 1}/{rounds}: A A' B = {values} ({elapsed:.0f}s)", file=sys.stderr, flush=True)
        session.finish()
    regression = loaded.spec.regression
    return Pool(engine, a, b, pool, regression.threshold, regression.confidence)


def verdict(a: list[TrialRecord], b: list[TrialRecord], objectives: list[str], pool: Pool) -> tuple[Verdict, Verdict]:
    """The overall verdict and the objective's alone, as ``autotuner compare`` judges an A/B."""
    found = objective_verdicts(a, b, objectives, pool.threshold, pool.confidence)
    slo = slo_metric_verdicts(a, b, pool.threshold, pool.confidence)
    findings = slo_findings("A", a, b, True)
    judged = overall([m.verdict for m in found], [m.verdict for m in slo], bool(findings))
    return judged, found[0].verdict


def rates(pool: Pool, repeats: int, draws: int, seed: int) -> dict[str, float]:
    objectives = [o.name for o in pool.rounds[0][0].objectives]
    rng = random.Random(seed)
    counts: dict[str, int] = dict.fromkeys(("fa", "fa_obj", "aa_inc", "det", "det_obj", "ab_inc"), 0)
    for _ in range(draws):
        chosen = rng.sample(pool.rounds, repeats)
        aa, aa_obj = verdict([r[0] for r in chosen], [r[1] for r in chosen], objectives, pool)
        ab, ab_obj = verdict([r[0] for r in chosen], [r[2] for r in chosen], objectives, pool)
        counts["fa"] += aa == "regressed"
        counts["fa_obj"] += aa_obj == "regressed"
        counts["aa_inc"] += aa == "inconclusive"
        counts["det"] += ab == "regressed"
        counts["det_obj"] += ab_obj == "regressed"
        counts["ab_inc"] += ab == "inconclusive"
    return {key: value / draws for key, value in counts.items()}


def report(pool: Pool, repeats: list[int], draws: int, seed: int) -> None:
    a = [r[0].objective or 0.0 for r in pool.rounds] + [r[1].objective or 0.0 for r in pool.rounds]
    b = [r[2].objective or 0.0 for r in pool.rounds]
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    cv = (sum((v / mean_a - 1) ** 2 for v in a) / (len(a) - 1)) ** 0.5
    print(f"engine {pool.engine}: A = {pool.a}, B = {pool.b}; pool of {len(pool.rounds)} rounds (A, A', B)")
    print(
        f"objective: A {mean_a:.1f}, B {mean_b:.1f}: true change of B {mean_b / mean_a - 1:+.1%} (pool means); "
        f"A's per-measurement CV {cv:.1%}"
    )
    print(
        f"threshold {pool.threshold:.0%}, confidence {pool.confidence:.0%}; {draws} comparisons per row, "
        f"R rounds drawn at random from the pool; default rounds {DEFAULT_ROUNDS}"
    )
    header = (
        f"{'R':>3}  {'false alarms':>12}  {'(objective)':>11}  {'A/A inconcl.':>12}  "
        f"{'detection':>9}  {'(objective)':>11}  {'A/B inconcl.':>12}"
    )
    print(header)
    for r in repeats:
        if r > len(pool.rounds):
            continue
        got = rates(pool, r, draws, seed)
        print(
            f"{r:>3}  {got['fa']:>12.1%}  {got['fa_obj']:>11.1%}  {got['aa_inc']:>12.1%}  "
            f"{got['det']:>9.1%}  {got['det_obj']:>11.1%}  {got['ab_inc']:>12.1%}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engine", choices=("sim", "cpu"), default="sim")
    parser.add_argument("--pool", type=int, default=None, help="rounds to measure (sim 40, cpu 12)")
    parser.add_argument("--repeats", default="2,3,5,8", help="rounds per comparison, comma-separated")
    parser.add_argument("--draws", type=int, default=400, help="comparisons drawn per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-flag", default="threads-batch=2:1", help="cpu: FLAG=A_VALUE:B_VALUE (B slower)")
    parser.add_argument("--cpu-fixed", default="", help="cpu: override the fixed config, e.g. threads=1")
    parser.add_argument("--cpu-requests", type=int, default=8, help="cpu: requests per measurement (one level, c=4)")
    parser.add_argument(
        "--cpu-throttle",
        type=float,
        default=None,
        metavar="PCT",
        help="cpu: B is A with the engine's CPU time capped at PCT%% of a core (e.g. 90: a 10%% slowdown); "
        "replaces --cpu-flag; needs root and cgroup-v1",
    )
    parser.add_argument("--save", type=Path, default=None, help="write the measured pool here")
    parser.add_argument("--drop", type=int, default=0, help="leave the first N rounds of the pool out")
    parser.add_argument("--from", dest="source", type=Path, default=None, help="analyse a saved pool")
    args = parser.parse_args(argv)
    if args.source is not None:
        pool = Pool.load(args.source)
    elif args.engine == "sim":
        pool = measure_pool(SIM_SPEC, dict(SIM_A), dict(SIM_B), args.pool or 40, "sim")
    else:
        flag, _, values = args.cpu_flag.partition("=")
        a_value, _, b_value = values.partition(":")
        python = None
        if args.cpu_throttle is not None:
            flag, a_value, b_value = f"env.{QUOTA_VARIABLE}", "100", str(round(args.cpu_throttle))
            python = throttle_wrapper(Path(tempfile.mkdtemp(prefix="regression-accuracy-throttle-")))
        fixed: dict[str, object] = dict(CPU_A)
        for item in filter(None, args.cpu_fixed.split(",")):
            key, _, value = item.partition("=")
            fixed[key] = int(value) if value.isdigit() else value
        fixed.pop(flag, None)
        a = {**fixed, flag: int(a_value) if a_value.isdigit() else a_value}
        b = {**fixed, flag: int(b_value) if b_value.isdigit() else b_value}
        spec_text = cpu_spec(flag, a_value, b_value, fixed, python, args.cpu_requests)
        try:
            pool = measure_pool(spec_text, a, b, args.pool or 12, "cpu (llama.cpp, smollm2)")
        finally:
            if python is not None:
                remove_throttle_groups()
    if args.save is not None:
        pool.save(args.save)
    pool.rounds = pool.rounds[args.drop :]
    report(pool, [int(r) for r in args.repeats.split(",")], args.draws, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
