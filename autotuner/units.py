"""Human units in specs: durations, percentages, percentiles and sizes.

Specs are written by people (``2s``, ``80ms``, ``1%``, ``p99``, ``4GiB``); everything after the spec works
with typed values (``timedelta``, a fraction, a ``Percentile``, bytes). The parsers live here, once, so every
field that takes a unit accepts the same spellings and rejects the same mistakes with the same message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|min|m|h)\s*$")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
    "ti": 2**40,
    "tib": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*$")
_PERCENTILE_RE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def parse_duration(value: Any) -> timedelta:
    """``500ms``, ``2s``, ``1m``, ``1.5h`` or a bare number of seconds -> ``timedelta``.

    A bare number is seconds because that is what every engine and genai-bench flag means by a plain number;
    writing the unit is still recommended and is what the shipped specs do.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 2s, 1m or 2h, got a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError(f"invalid duration {value!r}: write a number and a unit (us, ms, s, m, h), e.g. 2s")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 500ms, 2s, 1m or 2h, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite, non-negative amount of time")
    if seconds > 366 * 24 * 3600:
        raise ValueError("a duration longer than a year is surely a mistake")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration, so reports read like the spec that produced them."""
    micros = value // timedelta(microseconds=1)
    for unit, scale in (("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000)):
        if micros >= scale and micros % (scale // 1000 or 1) == 0:
            amount = (Decimal(micros) / Decimal(scale)).normalize()
            return f"{amount:f}{unit}"
    return f"{micros}us"


def parse_fraction(value: Any) -> float:
    """``1%`` -> 0.01; a bare number is taken as a fraction and must lie in [0, 1].

    A bare ``5`` is refused rather than read as 5%: the two readings differ by a factor of 100 and a tool that
    guesses wrong on an SLO threshold produces a verdict nobody can trust.
    """
    if isinstance(value, bool):
        raise ValueError("expected a percentage such as 1% or a fraction such as 0.01, got a boolean")
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f"invalid percentage {value!r}: write e.g. 1% or 0.01")
        try:
            fraction = float(text[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"invalid percentage {value!r}: write e.g. 1% or 0.01") from None
    elif isinstance(value, (int, float)):
        fraction = float(value)
        if fraction > 1:
            raise ValueError(f"{value} is not a fraction in [0, 1]: write {value}% for a percentage")
    else:
        raise ValueError(f"expected a percentage such as 1%, got {type(value).__name__}")
    if not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ValueError("a percentage must lie between 0% and 100%")
    return fraction


def format_fraction(value: float) -> str:
    return f"{value * 100:g}%"


def parse_size(value: Any) -> int:
    """``512MB``, ``4GiB``, ``2G`` or a bare number of bytes -> bytes (decimal and binary prefixes)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 4GiB, got a boolean")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE_RE.match(value)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _SIZE_UNITS:
            raise ValueError(f"invalid size {value!r}: write e.g. 512MiB, 4GiB or 2GB")
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    else:
        raise ValueError(f"expected a size such as 4GiB, got {type(value).__name__}")
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


@dataclass(frozen=True, order=True)
class Percentile:
    """A statistic of a latency distribution: ``mean``, ``max`` or ``pN`` with 0 < N < 100.

    ``quantile`` is None for the mean; ``max`` is the 1.0 quantile. Any percentile is accepted (not only the
    ones genai-bench pre-computes) because SLOs are judged on the per-request samples.
    """

    name: str
    quantile: float | None

    def __str__(self) -> str:
        return self.name


PERCENTILE_HELP = "use mean, max or pN with 0 < N < 100 (p50, p90, p99, p99.9)"


def parse_percentile(value: Any) -> Percentile:
    if isinstance(value, Percentile):
        return value
    if not isinstance(value, str):
        raise ValueError(f"unknown percentile {value!r}: {PERCENTILE_HELP}")
    text = value.strip().lower()
    if text in ("mean", "avg", "average"):
        return Percentile("mean", None)
    if text == "max":
        return Percentile("max", 1.0)
    match = _PERCENTILE_RE.match(text)
    if match:
        number = float(match.group(1))
        if 0 < number < 100:
            return Percentile(f"p{match.group(1)}", round(number / 100.0, 12))
    raise ValueError(f"unknown percentile {value!r}: {PERCENTILE_HELP}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
Fraction = Annotated[float, BeforeValidator(parse_fraction), PlainSerializer(format_fraction, return_type=str)]
Size = Annotated[int, BeforeValidator(parse_size)]
