"""A valid spec to mutate in tests (kept here, not read from tuning_specs/, so editing the shipped specs cannot
silently change what the tests check)."""

from autotuner.launch.base import Deployment, Launcher, LaunchRequest

BASE = """\
name: smollm2-cpu
description: Tune llama.cpp serving SmolLM2-135M on CPU
model: {id: builtin:smollm2}
engine:
  runtime: llamacpp
  launcher: process
  args: {n-ctx: 4096}
  startup_timeout: 120s
parameters:
  n-parallel: [1, 2, 4]
  threads: [1, 2]
  n-batch: {low: 256, high: 2048, log: true, step: 256}
constraints: ["n-parallel * threads <= 8"]
workload:
  task: text-to-text
  scenarios: ["D(64,64)"]
  concurrency: [1, 4]
  max_requests: 12
  max_time: 1m
  warmup_requests: 2
slo:
  ttft: {p90: 2s}
  tpot: {p90: 80ms, hard: false}
  e2e_latency: {p99: 10s}
  error_rate: 1%
objective: {maximize: output_throughput}
search: {strategy: auto, max_trials: 6, timeout: 20m, seed: 0, baseline: {n-parallel: 1, threads: 2}}
regression: {threshold: 5%}
"""


def mutate(old: str, new: str, base: str = BASE) -> str:
    """``base`` with ``old`` replaced by ``new``; fails loudly if ``old`` is not there (a stale test case)."""
    assert old in base, f"test case is stale: {old!r} not in the base spec"
    return base.replace(old, new, 1)


class NoLaunch(Launcher):
    """A launcher for studies whose trials are made up (``Study.run_trial`` replaced): launching is a bug."""

    kind = "none"

    def start(self, request: LaunchRequest) -> Deployment:
        raise AssertionError("nothing is launched: the trials' records are made up")
