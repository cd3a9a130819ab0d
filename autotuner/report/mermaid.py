"""The headline chart as Mermaid, for places that render Markdown but cannot host an image (a PR comment without
an asset store, a job summary). GitHub renders ``xychart-beta`` blocks natively.

It shows the top feasible trials by objective as bars, the best first; trials without a value cannot be bars, so
the title says how many were left out rather than drawing them as zeros that would read as measurements.
"""

from __future__ import annotations

from .data import ReportData

MAX_BARS = 30  # more bars than this are unreadable in a comment-width chart


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def headline_chart(data: ReportData) -> str:
    """A ``xychart-beta`` block (without the fence) of the objective of the best trials; empty without any."""
    objective = data.headline.objective
    valued = [row for row in data.trials if row.outcome == "feasible" and row.objective is not None]
    if not valued:
        return ""
    shown = valued[:MAX_BARS]
    left_out = len(data.trials) - len(shown)
    labels = []
    for row in shown:
        tag = " best" if row.best else (" baseline" if row.baseline else "")
        labels.append(_quote(f"#{row.number}{tag}"))
    values = [f"{row.objective:.4g}" for row in shown]
    top = max(row.objective or 0.0 for row in shown)
    title = f"{data.headline.spec_name}: {objective.metric} of the best {len(shown)} trials"
    if left_out:
        title += f" ({left_out} more not shown)"
    unit = f" ({objective.unit})" if objective.unit else ""
    return "\n".join(
        [
            "xychart-beta",
            f"    title {_quote(title)}",
            f"    x-axis {_quote('trial')} [{', '.join(labels)}]",
            f"    y-axis {_quote(objective.metric + unit)} 0 --> {top * 1.1:.4g}",
            f"    bar [{', '.join(values)}]",
        ]
    )


def fenced(data: ReportData) -> str:
    """The chart inside a ```mermaid fence, ready to paste into Markdown (empty without feasible trials)."""
    chart = headline_chart(data)
    return f"```mermaid\n{chart}\n```" if chart else ""
