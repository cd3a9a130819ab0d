"""How numbers read in a report: one place, so the Markdown, the HTML and the chart labels agree.

Values are stored in the metric's own unit (seconds, tokens/s, a fraction) and only turned into text here, at the
edge: the data layer never holds pre-formatted strings that a test would have to parse back.
"""

from __future__ import annotations

import math

from ..metric import METRICS

_LATENCIES = ("ttft", "tpot", "e2e_latency")


def metric_unit(metric: str) -> str:
    """The unit a metric is shown in (``ttft.p90`` -> ``s``); unknown names have none."""
    info = METRICS.get(metric.split(".")[0])
    return info.unit if info is not None else ""


def is_latency(metric: str) -> bool:
    return metric.split(".")[0] in _LATENCIES


def value(number: float | None, metric: str) -> str:
    """``0.182 s`` -> ``182 ms``; ``94.86`` tokens/s -> ``94.9 tok/s``; an error rate as a percentage."""
    if number is None or (isinstance(number, float) and math.isnan(number)):
        return "n/a"
    name = metric.split(".")[0]
    if name == "error_rate":
        return f"{number:.1%}"
    if name in _LATENCIES:
        if number < 1:
            return f"{number * 1000:.3g} ms" if number < 0.1 else f"{number * 1000:.0f} ms"
        return f"{number:.2f} s"
    unit = metric_unit(metric).replace("tokens/s", "tok/s").replace("requests/s", "req/s")
    return f"{number:.4g} {unit}".rstrip()


def interval(low: float, high: float, metric: str) -> str:
    """``[117, 129.4] tok/s``: both bounds in one unit, written once."""
    first, second = value(low, metric), value(high, metric)
    unit_a, unit_b = first.partition(" ")[2], second.partition(" ")[2]
    if unit_a and unit_a == unit_b:
        return f"[{first.partition(' ')[0]}, {second.partition(' ')[0]}] {unit_a}"
    return f"[{first}, {second}]"


def percent(fraction: float | None, signed: bool = True) -> str:
    """A relative change (``0.382`` -> ``+38.2%``)."""
    if fraction is None or math.isnan(fraction):
        return "n/a"
    if math.isinf(fraction):
        return "+inf%" if fraction > 0 else "-inf%"
    return f"{fraction:+.1%}" if signed else f"{fraction:.1%}"


def seconds(number: float | None) -> str:
    """A wall-clock duration (``75.3`` -> ``1m15s``)."""
    if number is None:
        return "n/a"
    if number < 60:
        return f"{number:.1f}s"
    minutes, rest = divmod(int(round(number)), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def shorten(text: str, limit: int = 160) -> str:
    """One line, at most ``limit`` characters (long engine messages would swamp a table)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
