"""The incumbent probe: drop a hopeless config after a few requests instead of its whole workload (pure).

Most configs of a search are far from the best: on the embedded default's 48-config grid, 38 are more than 25%
below it. Once a good config is known, a new one is first run for a few requests at the level where the best so
far got its objective value; if it is more than ``search.probe.margin`` below that value there, it is dropped
(outcome ``skipped``, with the figures), and the rest of its workload is never run.

When the probe is sound, and so used:
- one objective, a rate to maximize (output/total throughput, requests/s): the config's objective is its best
  feasible level's rate, and a short run's rate estimates it without judging SLOs on a handful of requests;
- the incumbent's level is the highest concurrency of its scenario: a closed-loop engine's throughput does not
  fall as concurrency rises to its limit, so the probe level bounds what the config can reach (an assumption,
  documented in the README; the margin absorbs mild violations and the noise of a short run);
- it pays: the probe sends at most a third of the workload's requests.
The baseline and repeats of a config (re-measurements) are never probed: they are measured in full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .bench.measurement import LevelKey
from .metric import RATE_METRICS
from .results import TrialRecord
from .spec import TuningSpec, Workload

MIN_PROBE_REQUESTS = 4


@dataclass(frozen=True)
class Incumbent:
    """The best config so far and where its objective value came from: what a probe is held against."""

    trial: int
    config_id: str
    level: LevelKey
    value: float
    requests: int  # requests the probe sends
    margin: float

    @property
    def threshold(self) -> float:
        """Below this a probed config is hopeless."""
        return self.value * (1.0 - self.margin)


def incumbent(spec: TuningSpec, records: Iterable[TrialRecord]) -> Incumbent | None:
    """The incumbent to probe new configs against, or None where a probe would be unsound or not pay."""
    probe = spec.search.probe
    if not probe.enabled or len(spec.objective) != 1:
        return None
    term = spec.objective[0]
    if term.direction != "maximize" or term.metric.name not in RATE_METRICS:
        return None
    feasible = [r for r in records if r.outcome == "feasible" and r.objective is not None and r.objectives[0].level]
    if not feasible:
        return None
    best = max(feasible, key=lambda r: r.objective or 0.0)
    level = _level_key(best.objectives[0].level or "")
    workload = spec.workload
    if level is None or level.concurrency != max(workload.concurrency):
        return None
    requests = probe.requests or max(MIN_PROBE_REQUESTS, 2 * level.concurrency)
    total = workload.max_requests * len(workload.scenarios) * len(workload.concurrency)
    if requests * 3 > total:
        return None
    return Incumbent(best.number, best.config_id, level, float(best.objective or 0.0), requests, probe.margin)


def probe_workload(workload: Workload, target: Incumbent) -> Workload:
    """The probe: the incumbent's level only, for ``target.requests`` requests, with the spec's warm-up."""
    return workload.model_copy(
        update={
            "scenarios": (target.level.scenario,),
            "concurrency": (target.level.concurrency,),
            "max_requests": target.requests,
        }
    )


def verdict(value: float | None, target: Incumbent) -> str | None:
    """Why the probed config is dropped (None: measure it in full). No value (every request failed) drops it."""
    if value is None:
        return f"probe at {target.level}: no request completed (the best so far, trial {target.trial}, did)"
    if value >= target.threshold:
        return None
    below = 1.0 - value / target.value
    return (
        f"probe at {target.level}: {value:.4g} after {target.requests} requests, {below:.0%} below the best so far "
        f"(trial {target.trial}, {target.value:.4g}); dropped beyond a {target.margin:.0%} margin"
    )


def _level_key(text: str) -> LevelKey | None:
    scenario, _, concurrency = text.rpartition("@")
    return LevelKey(scenario, int(concurrency)) if scenario and concurrency.isdigit() else None
