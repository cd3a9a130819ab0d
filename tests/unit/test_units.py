"""Units in specs parse to typed values, and reject what is ambiguous."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotuner.units import (
    Percentile,
    format_duration,
    format_fraction,
    parse_duration,
    parse_fraction,
    parse_percentile,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2),
        ("1m", 60),
        ("2h", 7200),
        ("1.5h", 5400),
        ("250us", 0.00025),
        (3, 3),
        (0.25, 0.25),
        ("10min", 600),
        (" 2 s ", 2),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["2", "2 parsecs", "-1s", "s", "1d", True, None, [1], float("nan"), "400d"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**7))
def test_duration_format_round_trips(milliseconds: int) -> None:
    value = timedelta(milliseconds=milliseconds)
    assert parse_duration(format_duration(value)) == value


def test_duration_format_reads_like_a_spec() -> None:
    assert [format_duration(timedelta(seconds=s)) for s in (0.08, 2, 60, 7200, 90)] == [
        "80ms",
        "2s",
        "1m",
        "2h",
        "1.5m",
    ]


@pytest.mark.parametrize(
    ("text", "fraction"), [("1%", 0.01), ("0.5%", 0.005), ("100%", 1.0), (0.05, 0.05), (0, 0.0), (1, 1.0)]
)
def test_fractions(text: object, fraction: float) -> None:
    assert parse_fraction(text) == pytest.approx(fraction)


@pytest.mark.parametrize("text", [5, "5", "-1%", "101%", "x%", True, None, 1.5])
def test_bad_fractions(text: object) -> None:
    with pytest.raises(ValueError):
        parse_fraction(text)


def test_bare_number_above_one_suggests_percent() -> None:
    with pytest.raises(ValueError, match="write 5% for a percentage"):
        parse_fraction(5)


def test_fraction_format() -> None:
    assert format_fraction(0.05) == "5%"


@pytest.mark.parametrize(
    ("text", "name", "quantile"),
    [
        ("mean", "mean", None),
        ("p50", "p50", 0.5),
        ("p90", "p90", 0.9),
        ("p99.9", "p99.9", 0.999),
        ("P99", "p99", 0.99),
        ("max", "max", 1.0),
        ("p1", "p1", 0.01),
    ],
)
def test_percentiles(text: str, name: str, quantile: float | None) -> None:
    parsed = parse_percentile(text)
    assert parsed == Percentile(name, quantile)
    assert str(parsed) == name


@pytest.mark.parametrize("text", ["p0", "p100", "q90", "90", "p", "median", 90, None])
def test_bad_percentiles(text: object) -> None:
    with pytest.raises(ValueError, match="unknown percentile"):
        parse_percentile(text)


@pytest.mark.parametrize(
    ("text", "size"), [("512MB", 512 * 10**6), ("4GiB", 4 * 2**30), ("2G", 2 * 10**9), (1024, 1024), ("1.5KiB", 1536)]
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["4 parsecs", "GiB", True, -1, "1.2.3GB"])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)
