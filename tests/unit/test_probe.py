"""When the incumbent probe is used, and what it says (autotuner.probe: pure)."""

from __future__ import annotations

import yaml

from autotuner.probe import incumbent, probe_workload, verdict
from autotuner.results import ObjectiveRecord, TrialRecord
from autotuner.spec import TuningSpec

from .specs import BASE


def spec(**overrides: object) -> TuningSpec:
    data = yaml.safe_load(BASE)
    data["search"] = {"strategy": "grid"}
    for key, value in overrides.items():
        if key == "search":
            data["search"].update(value)
        else:
            data[key] = value
    return TuningSpec.model_validate(data)


def record(number: int, value: float | None, level: str = "D(64,64)@4", outcome: str = "feasible") -> TrialRecord:
    return TrialRecord(
        number=number,
        config={"x": number},
        config_id=f"x={number}",
        config_hash=f"h{number}",
        outcome=outcome,  # type: ignore[arg-type]
        objectives=[ObjectiveRecord(name="maximize output_throughput", value=value, level=level)],
    )


def test_the_best_feasible_trial_is_the_incumbent() -> None:
    target = incumbent(spec(), [record(0, 50.0), record(1, 80.0), record(2, 99.0, outcome="infeasible")])
    assert target is not None
    assert (target.trial, target.value, str(target.level), target.requests) == (1, 80.0, "D(64,64)@4", 8)
    assert target.threshold == 60.0


def test_no_incumbent_no_probe() -> None:
    assert incumbent(spec(), []) is None
    assert incumbent(spec(), [record(0, None, outcome="infeasible")]) is None


def test_turned_off_or_unsound_or_not_paying_means_no_probe() -> None:
    records = [record(0, 80.0)]
    assert incumbent(spec(search={"probe": False}), records) is None
    assert incumbent(spec(objective={"minimize": "e2e_latency.p90"}), records) is None  # not a rate
    assert incumbent(spec(), [record(0, 80.0, level="D(64,64)@1")]) is None  # not the highest concurrency
    assert incumbent(spec(search={"probe": {"requests": 9}}), records) is None  # 27 > 24 requests: no saving
    assert incumbent(spec(search={"probe": {"requests": 8}}), records) is not None


def test_probe_workload_is_the_incumbent_level_only() -> None:
    loaded = spec()
    target = incumbent(loaded, [record(0, 80.0)])
    assert target is not None
    probe = probe_workload(loaded.workload, target)
    assert (probe.scenarios, probe.concurrency, probe.max_requests) == (("D(64,64)",), (4,), 8)
    assert probe.warmup_requests == loaded.workload.warmup_requests


def test_verdict_drops_only_beyond_the_margin() -> None:
    target = incumbent(spec(), [record(3, 100.0)])
    assert target is not None
    assert verdict(76.0, target) is None
    assert verdict(100.0, target) is None
    why = verdict(50.0, target)
    assert why is not None and "50% below the best so far (trial 3, 100)" in why and "25% margin" in why
    assert verdict(None, target) is not None
