"""``Interval``: an estimate with its confidence bounds, and how they were obtained.

Every statistic the tuner reports (a level's throughput, a latency percentile, a config's objective over repeats,
the change against a baseline) is an ``Interval``, so the SLO verdict, the tie-set and the regression comparison
all read the same numbers. ``method`` names the procedure (``bca-bootstrap``, ``order-statistic``, ...) because
a reader judging "p99 2.1 s [1.4, 2.3]" needs to know whether it is exact, approximate or a fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """``estimate`` with a two-sided ``confidence`` interval ``[low, high]`` from ``n`` observations.

    Bounds may be infinite: "unknown" (too few observations for the method) is stated, not hidden behind a
    zero-width interval. The estimate need not be the midpoint (bootstrap intervals of skewed statistics are not
    symmetric), and for a percentile bootstrap it can, rarely, fall outside the bounds.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    method: str

    def finite_fields(self) -> dict[str, float | int | str | None]:
        """The fields as data for JSON records: infinite bounds ("unknown") become None (JSON has no infinity)."""

        def finite(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {
            "estimate": finite(self.estimate),
            "low": finite(self.low),
            "high": finite(self.high),
            "confidence": self.confidence,
            "n": self.n,
            "method": self.method,
        }

    def __post_init__(self) -> None:
        if math.isnan(self.low) or math.isnan(self.high) or self.low > self.high:
            raise ValueError(f"invalid interval [{self.low}, {self.high}]")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def half_width(self) -> float:
        return self.width / 2

    @property
    def relative_half_width(self) -> float:
        """Half the width over ``|estimate|``: "±7%". Infinite when the estimate is 0 or a bound is unknown."""
        if self.estimate == 0 or not math.isfinite(self.width):
            return math.inf
        return self.half_width / abs(self.estimate)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return (
            f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] ({self.confidence:.0%}, n={self.n}, {self.method})"
        )


def unknown(estimate: float, confidence: float, n: int, why: str) -> Interval:
    """An interval whose bounds cannot be estimated (e.g. one request): infinite, with the reason as method."""
    return Interval(estimate, -math.inf, math.inf, confidence, n, why)
