"""The vocabulary of measured quantities shared by SLOs, objectives, reports and comparisons.

One place says which metrics exist, what unit they are in and which direction is better, so that no layer has
to guess (the original tool's "negative score is best" surprises came from each layer guessing).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum

from .units import Percentile, parse_percentile


class Better(str, Enum):
    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    better: Better
    needs_statistic: bool  # latencies are distributions: say which statistic (p90, mean, ...)
    description: str


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("ttft", "s", Better.LOWER, True, "time to first token"),
        MetricInfo("tpot", "s", Better.LOWER, True, "time per output token after the first"),
        MetricInfo("e2e_latency", "s", Better.LOWER, True, "end-to-end request latency"),
        MetricInfo("output_throughput", "tokens/s", Better.HIGHER, False, "output tokens per second, server-wide"),
        MetricInfo("total_throughput", "tokens/s", Better.HIGHER, False, "input+output tokens per second"),
        MetricInfo("requests_per_second", "requests/s", Better.HIGHER, False, "completed requests per second"),
        MetricInfo("goodput", "requests/s", Better.HIGHER, False, "requests per second that meet every SLO"),
        MetricInfo("error_rate", "fraction", Better.LOWER, False, "failed requests / all requests"),
    )
}
LATENCY_METRICS = tuple(name for name, info in METRICS.items() if info.needs_statistic)
RATE_METRICS = ("output_throughput", "total_throughput", "requests_per_second")


@dataclass(frozen=True)
class Metric:
    """A metric, with a statistic for latency distributions: ``e2e_latency.p90``, ``output_throughput``."""

    name: str
    statistic: Percentile | None = None

    @property
    def info(self) -> MetricInfo:
        return METRICS[self.name]

    def __str__(self) -> str:
        return f"{self.name}.{self.statistic}" if self.statistic else self.name


def parse_metric(text: object) -> Metric:
    if isinstance(text, Metric):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a metric name such as output_throughput or e2e_latency.p90, got {text!r}")
    name, _, statistic = text.strip().partition(".")
    if name not in METRICS:
        hint = difflib.get_close_matches(name, METRICS, n=1)
        suggestion = f"did you mean {hint[0]!r}? " if hint else ""
        raise ValueError(f"unknown metric {name!r}: {suggestion}(known: {', '.join(METRICS)})")
    info = METRICS[name]
    if info.needs_statistic and not statistic:
        raise ValueError(f"{name} is a distribution: say which statistic, e.g. {name}.p90 or {name}.mean")
    if not info.needs_statistic and statistic:
        raise ValueError(f"{name} is a single number per level and takes no statistic ({statistic!r})")
    return Metric(name, parse_percentile(statistic) if statistic else None)
