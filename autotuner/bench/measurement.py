"""What one benchmark level measured: per-request samples first, aggregates derived from them.

A level is one (scenario, concurrency) pair of the workload. SLOs are judged per level on that level's own
distribution, so a ``Measurement`` keeps every successful request's latencies (the samples that percentiles,
violation rates, confidence intervals and regression tests need) next to genai-bench's own aggregate figures.
Times are seconds everywhere, whatever unit genai-bench wrote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..units import Percentile

LATENCIES = ("ttft", "tpot", "e2e_latency", "output_latency")


@dataclass(frozen=True)
class RequestSample:
    """One request as genai-bench recorded it. Latencies are None for failed requests (and tpot for 1 token)."""

    ttft: float | None
    tpot: float | None
    e2e_latency: float | None
    output_latency: float | None
    input_tokens: int | None
    output_tokens: int | None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


@dataclass(frozen=True)
class LevelKey:
    scenario: str
    concurrency: int

    def __str__(self) -> str:
        return f"{self.scenario}@{self.concurrency}"


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks: numpy's default, which genai-bench's own percentiles use."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Measurement:
    """One level's result. ``error_rate`` is recomputed (genai-bench saves 0 whatever happened)."""

    key: LevelKey
    samples: tuple[RequestSample, ...]
    run_duration: float  # seconds; our worker stops within 50 ms of the last request (plain genai-bench: 1 s tick)
    output_throughput: float  # genai-bench's server-wide output tokens/s (tokens / run_duration)
    total_throughput: float
    requests_per_second: float
    error_codes: Mapping[str, int] = field(default_factory=dict)
    reference_stats: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)  # genai-bench's stats

    @property
    def completed(self) -> int:
        return sum(1 for s in self.samples if s.ok)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    @property
    def error_rate(self) -> float:
        total = len(self.samples)
        return self.errors / total if total else 0.0

    def values(self, metric: str) -> list[float]:
        """The successful requests' values of a latency metric (seconds)."""
        if metric not in LATENCIES:
            raise ValueError(f"{metric} is not a per-request latency ({', '.join(LATENCIES)})")
        result = []
        for sample in self.samples:
            value = getattr(sample, metric)
            if sample.ok and value is not None and math.isfinite(value):
                result.append(float(value))
        return result

    def statistic(self, metric: str, statistic: Percentile) -> float:
        """``mean``, ``max`` or a percentile of a latency over this level's successful requests; NaN if none."""
        values = self.values(metric)
        if not values:
            return math.nan
        if statistic.quantile is None:
            return sum(values) / len(values)
        return quantile(values, statistic.quantile)

    def share_over(self, metric: str, limit: float) -> float:
        """The violation rate: the share of successful requests whose value exceeds ``limit``."""
        values = self.values(metric)
        return sum(1 for v in values if v > limit) / len(values) if values else math.nan


@dataclass(frozen=True)
class LevelFailure:
    """A level that produced no usable measurement, and why (no file, genai-bench's debug file, a crash)."""

    key: LevelKey
    reason: str
    samples: tuple[RequestSample, ...] = ()


LevelResult = Measurement | LevelFailure
