"""``--tune-benchmark-json``: the measured objectives in pytest-benchmark's JSON format.

Why this format: tools that track benchmarks over commits already read it -- github-action-benchmark's
``pytest`` tool, Bencher, CodSpeed's importers. pytest-benchmark times a function, so its numbers are seconds
per round and its ``ops`` is rounds per second; github-action-benchmark charts ``stats.ops`` as "iter/sec",
bigger is better, and shows ``stats.mean`` beside it. The objective is mapped so that both read right:

- a maximized rate (``output_throughput`` in tokens/s, ``requests_per_second``, ``goodput``): ``stats.mean`` is
  its inverse, the seconds per token (or per request), so ``stats.ops`` *is* the throughput;
- a minimized latency (``ttft.p90``, ``e2e_latency.p99``...): ``stats.mean`` is the latency in seconds, and
  ``stats.ops`` its inverse (bigger is better, as the tools assume); ``error_rate`` is a fraction, not seconds.

The objective in its own unit and direction is in ``extra_info`` (``objective``, ``value``, ``unit``,
``direction``, and ``stats_unit`` saying what ``stats`` hold), with the config and the SLO outcome. Entries: one per
feasible config (``<spec>[<config id>]``; infeasible configs have no value) and one ``<spec>[best]`` per spec
whose verdict ran, which is the series to watch for regressions. Each measurement of a config is a round: one
(``stddev`` 0) unless the verdict raced the best against its tie-set, which measures those configs again (``stats.ops`` is
then the harmonic mean of the throughputs: total tokens over total time, as pytest-benchmark computes it). The statistics are computed by pytest-benchmark's own ``Stats`` class, and
``machine_info``/``commit_info`` come from its hooks when it is active, so the file is what it would write.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ..metric import METRICS

OPTIONS = {
    "disable_gc": False,
    "timer": "autotuner",
    "min_rounds": 1,
    "max_time": 0.0,
    "min_time": 0.0,
    "warmup": False,
    "precision": None,  # pytest-benchmark >= 5.3 writes these two; readers of older files ignore them
    "confidence": None,
}


def objective_parts(objective: str) -> tuple[str, str, str]:
    """``"maximize output_throughput"`` -> (direction, metric, unit)."""
    direction, _, metric = objective.partition(" ")
    info = METRICS.get(metric.split(".")[0])
    return direction, metric, info.unit if info is not None else ""


def seconds_per_round(objective: str, value: float) -> tuple[float, str]:
    """The objective as pytest-benchmark's "seconds per round", smaller better, and what that unit means."""
    direction, _metric, unit = objective_parts(objective)
    if direction == "maximize":
        per = unit.split("/")[0] if "/" in unit else unit or "unit"
        return (1.0 / value if value > 0 else float("inf")), f"s/{per.rstrip('s') or per}"
    return value, unit or "s"


def stats_of(values: Iterable[float]) -> dict[str, Any]:
    """pytest-benchmark's statistics of the given rounds, computed by its own ``Stats``."""
    from pytest_benchmark.stats import Stats

    stats = Stats()  # type: ignore[no-untyped-call]
    for value in values:
        stats.update(value)  # type: ignore[no-untyped-call]
    data = dict(stats.as_dict())  # type: ignore[no-untyped-call]
    data["data"] = list(stats.data)  # --benchmark-json writes the rounds too
    data["iterations"] = 1
    return data


def entry(
    *, name: str, fullname: str, group: str, objective: str, values: list[float], extra: Mapping[str, Any]
) -> dict[str, Any] | None:
    """One ``benchmarks[]`` element (a round per measurement), or None when a value cannot be expressed (zero
    throughput has no seconds per token)."""
    rounds = [seconds_per_round(objective, value) for value in values]
    if not rounds or any(not math.isfinite(per_round) for per_round, _unit in rounds):
        return None
    stats_unit = rounds[0][1]
    direction, metric, unit = objective_parts(objective)
    info = {
        "objective": objective,
        "value": values[0] if len(values) == 1 else statistics.mean(values),
        "values": list(values),
        "unit": unit,
        "direction": direction,
        "metric": metric,
        "stats_unit": stats_unit,
        **extra,
    }
    config = extra.get("config")
    return {
        "group": group,
        "name": name,
        "fullname": fullname,
        "params": dict(config) if isinstance(config, Mapping) else None,
        "param": extra.get("config_id"),
        "extra_info": info,
        "options": dict(OPTIONS),
        "stats": stats_of([per_round for per_round, _unit in rounds]),
    }


def machine_info(config: pytest.Config) -> dict[str, Any]:
    hook = getattr(config.hook, "pytest_benchmark_generate_machine_info", None)
    if hook is not None:
        info = dict(hook(config=config))
        update = getattr(config.hook, "pytest_benchmark_update_machine_info", None)
        if update is not None:
            update(config=config, machine_info=info)
        return info
    return {  # pytest-benchmark disabled (-p no:benchmark): its core keys
        "node": platform.node(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "system": platform.system(),
        "release": platform.release(),
    }


def commit_info(config: pytest.Config) -> dict[str, Any]:
    hook = getattr(config.hook, "pytest_benchmark_generate_commit_info", None)
    if hook is None:
        return {}
    info = dict(hook(config=config))
    update = getattr(config.hook, "pytest_benchmark_update_commit_info", None)
    if update is not None:
        update(config=config, commit_info=info)
    return info


def document(config: pytest.Config, benchmarks: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        from pytest_benchmark import __version__ as version
    except ImportError:  # pragma: no cover - a dependency, but the export must not depend on its presence
        version = "5.0.0"
    return {
        "machine_info": machine_info(config),
        "commit_info": commit_info(config),
        "benchmarks": benchmarks,
        "datetime": datetime.now(timezone.utc).isoformat(),
        "version": version,
    }


def write(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, default=str, allow_nan=False) + "\n", encoding="utf-8")
