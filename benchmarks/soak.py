"""A long study against the engine double: do the tool's processes stay flat in memory and open files?

A real study runs for hours and hundreds of trials. A leak of one file descriptor or a few hundred kilobytes
per trial (an engine log left open, a socket per health check, records kept twice, the genai-bench worker
accumulating results) stays invisible in a 6-trial test and kills the run at trial 900. So this runs
``autotuner tune`` on a grid of ``--trials`` configs of the ``sim`` engine, sleep-free (time scale 0.1, two
requests per level, no warm-up), with the real process launcher and the real genai-bench worker, and samples
every ``--every`` trials:

    tuner   RSS (MiB), open file descriptors, threads of the ``autotuner tune`` process
    bench   RSS (MiB) and open file descriptors of the genai-bench worker (one per study, reused by every trial)
    procs   processes of the run alive at that moment (the tuner, its engine, the worker)

Flat means: the mean RSS of the last quarter of samples is within ``--tolerance`` of the first quarter's (the
first sample is left out: imports and the first trial's allocations), the RSS grows by at most ``MAX_SLOPE_KIB``
per trial (the record each trial adds to results.json, once), and the median open files of the last quarter
equal the first quarter's within 2. The RSS slope per trial and the size of results.json are printed.

    python benchmarks/soak.py                  # 200 trials (~5 min on 2 cores)
    python benchmarks/soak.py --trials 40 --every 5
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sandbox import Sandbox, child_processes, spec_text  # noqa: E402

MIB = 1 << 20
# The tuner keeps every trial's record for results.json: one TrialRecord of a soak trial is ~20 KiB of Python
# objects, ~26 KiB of RSS per trial in all. 60 KiB per trial was the record held three times (issue 11).
MAX_SLOPE_KIB = 40.0


@dataclass(frozen=True)
class Sample:
    trial: int
    seconds: float
    tuner_rss: float  # MiB
    tuner_fds: int
    tuner_threads: int
    bench_rss: float | None  # MiB; None when no worker runs at that moment
    bench_fds: int | None
    processes: int


@dataclass(frozen=True)
class Verdict:
    samples: list[Sample]
    code: int
    problems: list[str]
    results_kib: float = 0.0  # results.json at the end
    trials: int = 0

    @property
    def rss_slope_kib(self) -> float:
        return rss_slope_kib(self.samples)

    def summary(self) -> str:
        per_trial = self.results_kib / self.trials if self.trials else 0.0
        return (
            f"tuner RSS +{self.rss_slope_kib:.0f} KiB per trial; results.json {self.results_kib:.0f} KiB after "
            f"{self.trials} trials ({per_trial:.1f} KiB per trial, rewritten after each)"
        )

    @property
    def flat(self) -> bool:
        return not self.problems


def _sample(box: Sandbox, pid: int, trial: int, started: float) -> Sample | None:
    try:
        tuner = psutil.Process(pid)
        with tuner.oneshot():
            rss, fds, threads = tuner.memory_info().rss / MIB, tuner.num_fds(), tuner.num_threads()
    except psutil.Error:
        return None
    bench_rss = bench_fds = None
    for worker in child_processes(pid, lambda cmd: "genai_bench_worker" in cmd):
        try:
            bench_rss, bench_fds = worker.memory_info().rss / MIB, worker.num_fds()
        except psutil.Error:
            continue
    return Sample(trial, time.monotonic() - started, rss, fds, threads, bench_rss, bench_fds, len(box.processes()))


def quarter_means(values: list[float]) -> tuple[float, float]:
    """Means of the first and the last quarter (at least one value each)."""
    n = max(1, len(values) // 4)
    return statistics.fmean(values[:n]), statistics.fmean(values[-n:])


def quarter_medians(values: list[int]) -> tuple[float, float]:
    n = max(1, len(values) // 4)
    return statistics.median(values[:n]), statistics.median(values[-n:])


def rss_slope_kib(samples: list[Sample]) -> float:
    """The tuner's RSS growth per trial (least squares over the samples after the first), KiB."""
    steady = samples[1:]
    if len(steady) < 2:
        return 0.0
    return statistics.linear_regression([s.trial for s in steady], [s.tuner_rss * 1024 for s in steady]).slope


def judge(samples: list[Sample], tolerance: float, max_slope_kib: float = MAX_SLOPE_KIB) -> list[str]:
    problems: list[str] = []
    steady = samples[1:] if len(samples) > 2 else samples
    if len(steady) < 2:
        return ["too few samples"]
    first, last = quarter_means([s.tuner_rss for s in steady])
    if last > first * (1 + tolerance):
        problems.append(f"tuner RSS grew {first:.0f} -> {last:.0f} MiB (> {tolerance:.0%})")
    slope = rss_slope_kib(samples)
    if slope > max_slope_kib:  # a leak too slow for the tolerance in a short run, which a long study still dies of
        problems.append(f"tuner RSS grows {slope:.0f} KiB per trial (> {max_slope_kib:.0f})")
    # Open files: medians of the first and last quarters (a sample can catch a health check's socket in flight;
    # a leak grows every trial and moves the median)
    fds_first, fds_last = quarter_medians([s.tuner_fds for s in steady])
    if abs(fds_last - fds_first) > 2:
        problems.append(f"tuner open files {fds_first:g} -> {fds_last:g} (medians of the first and last quarter)")
    bench = [s for s in steady if s.bench_rss is not None and s.bench_fds is not None]
    if len(bench) >= 2:
        first, last = quarter_means([s.bench_rss or 0.0 for s in bench])
        if last > first * (1 + tolerance):
            problems.append(f"genai-bench worker RSS grew {first:.0f} -> {last:.0f} MiB (> {tolerance:.0%})")
        fds_first, fds_last = quarter_medians([s.bench_fds or 0 for s in bench])
        if abs(fds_last - fds_first) > 2:
            problems.append(f"genai-bench worker open files {fds_first:g} -> {fds_last:g}")
    if max(s.processes for s in steady) > 4:
        problems.append(f"up to {max(s.processes for s in steady)} processes of the run at once")
    return problems


def soak(root: Path, trials: int = 200, every: int = 10, tolerance: float = 0.15) -> Verdict:
    box = Sandbox(root)
    name = "soak"
    spec = box.write_spec(
        name,
        spec_text(
            name,
            engine="{runtime: sim, args: {time-scale: 0.1, decode-step-ms: 10, kv-cache-tokens: 1000000000, "
            "max-model-len: 256, max-num-batched-tokens: 4096}, startup_timeout: 30s}",
            parameters=f"{{max-num-seqs: {{low: 1, high: {trials}}}}}",
            workload='{scenarios: ["D(16,8)"], concurrency: [1], max_requests: 2, max_time: 1m, warmup_requests: 0}',
            search="{strategy: grid, baseline: {max-num-seqs: 1}, racing: false, probe: false}",
        ),
    )
    tool = box.start(box.tool(*box.tune_args(spec)))
    started = time.monotonic()
    samples: list[Sample] = []
    pattern = re.compile(r"^trial (\d+): \w+", re.M)
    seen = 0
    while tool.process.poll() is None:
        done = [int(n) for n in pattern.findall(tool.output())]
        latest = max(done) + 1 if done else 0
        if latest >= seen + every or (latest and not samples):
            seen = latest
            sample = _sample(box, tool.pid, latest, started)
            if sample is not None:
                samples.append(sample)
        time.sleep(0.05)
    finished = tool.finish(60)
    box.kill_leftovers()
    problems = judge(samples, tolerance)
    if finished.code != 0:
        problems.append(f"exit {finished.code}: {finished.output.strip().splitlines()[-1:]}")
    count = len(pattern.findall(finished.output))
    if count < trials:
        problems.append(f"{count} of {trials} trials finished")
    results = box.results(name)
    size = results.stat().st_size / 1024 if results.exists() else 0.0
    return Verdict(samples, finished.code, problems, size, count)


def table(samples: list[Sample]) -> str:
    lines = [f"{'trial':>5} {'s':>6} {'tuner MiB':>9} {'fds':>4} {'thr':>4} {'bench MiB':>9} {'fds':>4} {'procs':>5}"]
    for s in samples:
        bench = f"{s.bench_rss:>9.1f} {s.bench_fds:>4}" if s.bench_rss is not None else f"{'-':>9} {'-':>4}"
        lines.append(
            f"{s.trial:>5} {s.seconds:>6.0f} {s.tuner_rss:>9.1f} {s.tuner_fds:>4} {s.tuner_threads:>4} {bench} "
            f"{s.processes:>5}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--every", type=int, default=10, help="sample every N trials")
    parser.add_argument("--tolerance", type=float, default=0.15, help="allowed RSS growth, last vs first quarter")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="autotuner-soak-"))
    try:
        verdict = soak(root, args.trials, args.every, args.tolerance)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(table(verdict.samples))
    print(verdict.summary())
    print("flat" if verdict.flat else "NOT flat: " + "; ".join(verdict.problems))
    return 0 if verdict.flat else 1


if __name__ == "__main__":
    sys.exit(main())
