"""The report's charts as PNG bytes, drawn from report data only (what they show is tested in series.py).

Every function returns the PNG, or None when there is nothing to draw (no comparison, no stages), so the writer
and the HTML embed exactly the same bytes. Markers carry the meaning as much as colours do: the best config is a
green star, the baseline config an orange square, infeasible trials grey crosses, failed ones vermillion triangles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from . import formatting, style
from .comparison import BaselineComparison
from .data import ReportData
from .headline import ObjectiveInfo
from .series import STAGE_KINDS, LatencyPanel, PercentileSeries, StageBar, TrialPoint

MAX_TIMELINE_TRIALS = 60  # more rows than this are unreadable at a fixed figure height
STAGE_STYLE: dict[str, tuple[str, str]] = {  # colour, hatch
    "launch": (style.ORANGE, "//"),
    "ready": (style.SKY, ".."),
    "warmup": (style.YELLOW, "xx"),
    "level": (style.BLUE, ""),
    "judge": (style.PURPLE, "\\\\"),
    "teardown": (style.GREY, "--"),
    "other": (style.BLACK, "++"),
}
STAT_MARKERS = {"p50": "o", "p90": "s", "p99": "^"}
STAT_COLOURS = {"p50": style.SKY, "p90": style.BLUE, "p99": style.PURPLE}


def _label(objective: ObjectiveInfo) -> str:
    return f"{objective.metric} ({objective.unit})" if objective.unit else objective.metric


def objective_chart(data: ReportData) -> bytes:
    """Objective per trial: the best a green star; trials without a value in a strip under the axis."""
    points = data.points
    with style.figure(8, 4) as fig:
        ax = fig.add_subplot()
        valued = [p for p in points if p.value is not None]
        values = [p.value for p in valued if p.value is not None]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        strip = low - 0.12 * ((high - low) or abs(high) or 1.0)
        _scatter(ax, [p for p in valued if not p.best and not p.baseline], "o", style.BLUE, "feasible", 36)
        _scatter(ax, [p for p in valued if p.baseline and not p.best], "s", style.ORANGE, "baseline config", 64)
        _scatter(ax, [p for p in valued if p.best], "*", style.GREEN, "best", 280, edge=style.BLACK)
        for outcome, marker, colour in (("infeasible", "x", style.GREY), ("failed", "v", style.RED)):
            chosen = [p for p in points if p.value is None and p.outcome == outcome]
            if chosen:
                ax.scatter([p.number for p in chosen], [strip] * len(chosen), marker=marker, color=colour, s=40)
                ax.scatter([], [], marker=marker, color=colour, label=f"{outcome} (no value)")
        skipped = [p for p in points if p.value is None and p.outcome not in ("infeasible", "failed")]
        if skipped:
            ax.scatter([p.number for p in skipped], [strip] * len(skipped), marker="D", color=style.PURPLE, s=24)
            ax.scatter([], [], marker="D", color=style.PURPLE, label="skipped (no value)")
        if len(valued) < len(points):
            ax.axhline(strip, color=style.GREY, linewidth=0.5)
        ax.set_xlabel("trial")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_label(data.headline.objective))
        ax.set_title(f"{data.headline.spec_name}: {data.headline.objective.name} per trial")
        _legend(ax)
        return style.png(fig)


def _scatter(
    ax: Axes,
    points: Sequence[TrialPoint],
    marker: str,
    colour: str,
    label: str,
    size: float,
    *,
    edge: str | None = None,
) -> None:
    pairs = [(p.number, p.value) for p in points if p.value is not None]
    if pairs:
        ax.scatter(
            [x for x, _ in pairs],
            [y for _, y in pairs],
            marker=marker,
            color=colour,
            s=size,
            label=label,
            edgecolors=edge,
            zorder=3,
        )


def history_chart(data: ReportData) -> bytes:
    """Best feasible objective so far against the trial number: where the search stopped finding better."""
    with style.figure(8, 3.5) as fig:
        ax = fig.add_subplot()
        xs = [h.number for h in data.history if h.best_so_far is not None]
        ys = [h.best_so_far for h in data.history if h.best_so_far is not None]
        feasible = [(h.number, h.value) for h in data.history if h.value is not None]
        if feasible:
            ax.scatter(
                [x for x, _ in feasible],
                [y for _, y in feasible],
                marker="o",
                color=style.SKY,
                s=20,
                label="trial value",
            )
        if xs:
            ax.step(xs, ys, where="post", color=style.GREEN, linewidth=2, label="best so far")
            ax.plot(xs, ys, linestyle="none", marker="*", color=style.GREEN, markersize=5)
        ax.set_xlabel("trial")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_label(data.headline.objective))
        ax.set_title("optimization history")
        _legend(ax)
        return style.png(fig)


def latency_chart(data: ReportData) -> bytes:
    """Latency against output throughput, one point per (config, level), per latency SLO; Pareto front drawn."""
    panels = data.panels[:4]
    with style.figure(4.2 * len(panels), 4) as fig:
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=True):
            _latency_panel(ax, panel)
        return style.png(fig)


def _latency_panel(ax: Axes, panel: LatencyPanel) -> None:
    groups = (
        (
            "feasible level",
            "o",
            style.BLUE,
            24,
            [p for p in panel.points if p.feasible and not p.best and not p.baseline],
        ),
        ("infeasible level", "x", style.GREY, 28, [p for p in panel.points if not p.feasible and not p.best]),
        ("baseline config", "s", style.ORANGE, 48, [p for p in panel.points if p.baseline and not p.best]),
        ("best config", "*", style.GREEN, 180, [p for p in panel.points if p.best]),
    )
    for label, marker, colour, size, points in groups:
        if points:
            ax.scatter(
                [p.throughput for p in points],
                [p.latency for p in points],
                marker=marker,
                color=colour,
                s=size,
                label=label,
                zorder=3,
            )
    if panel.front:
        ax.plot(
            [p.throughput for p in panel.front],
            [p.latency for p in panel.front],
            color=style.BLACK,
            linewidth=1.2,
            marker="o",
            markerfacecolor="none",
            markersize=9,
            label="Pareto front",
            zorder=2,
        )
    if panel.limit is not None:
        ax.axhline(
            panel.limit,
            color=style.RED,
            linestyle="--",
            linewidth=1.5,
            label=f"SLO {formatting.value(panel.limit, panel.metric)}",
        )
    ax.set_xlabel("output throughput (tok/s)")
    ax.set_ylabel(f"{panel.metric} (s)")
    ax.set_title(f"{panel.metric} vs throughput")
    _legend(ax)


def percentile_chart(data: ReportData) -> bytes | None:
    """TTFT, TPOT and E2E p50/p90/p99 against concurrency: best config solid, baseline config dashed."""
    if not data.percentiles:
        return None
    limits = {panel.metric: panel.limit for panel in data.panels if panel.limit is not None}
    scenarios = {s.scenario for s in data.percentiles}
    with style.figure(12, 4) as fig:
        axes = fig.subplots(1, 3, squeeze=False)[0]
        for ax, metric in zip(axes, ("ttft", "tpot", "e2e_latency"), strict=True):
            for line in (s for s in data.percentiles if s.metric == metric):
                _percentile_line(ax, line, len(scenarios) > 1)
            for name, limit in sorted(limits.items()):
                if name.split(".")[0] == metric:
                    ax.axhline(
                        limit,
                        color=style.RED,
                        linestyle="--",
                        linewidth=1.5,
                        label=f"SLO {name} {formatting.value(limit, name)}",
                    )
            ax.set_xlabel("concurrency")
            ax.set_xticks(sorted({c for s in data.percentiles for c in s.concurrency}))
            ax.set_ylabel(f"{metric} (s)")
            ax.set_title(metric)
            _legend(ax, fontsize=7)
        return style.png(fig)


def _percentile_line(ax: Axes, line: PercentileSeries, with_scenario: bool) -> None:
    pairs = [(c, v) for c, v in zip(line.concurrency, line.values, strict=True) if v is not None]
    label = f"{line.role} {line.statistic}" + (f" {line.scenario}" if with_scenario else "")
    ax.plot(
        [c for c, _ in pairs],
        [v for _, v in pairs],
        linestyle="-" if line.role == "best" else "--",
        marker=STAT_MARKERS.get(line.statistic, "o"),
        markerfacecolor=STAT_COLOURS.get(line.statistic, style.BLUE) if line.role == "best" else "none",
        color=STAT_COLOURS.get(line.statistic, style.BLUE),
        label=label,
    )


def timeline_chart(data: ReportData) -> bytes | None:
    """A Gantt of the trials' stages (launch, ready, warm-up, each level, judge, teardown); failed stages outlined."""
    numbers = sorted({bar.number for bar in data.timeline})
    if not numbers:
        return None
    shown = set(numbers[:MAX_TIMELINE_TRIALS])
    bars = [bar for bar in data.timeline if bar.number in shown]
    with style.figure(10, max(2.5, min(9.0, 0.9 + 0.22 * len(shown)))) as fig:
        ax = fig.add_subplot()
        for bar in bars:
            _stage_bar(ax, bar)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.invert_yaxis()
        ax.set_xlabel("seconds since the study started")
        ax.set_ylabel("trial")
        title = "where the time went"
        if len(numbers) > len(shown):
            title += f" (first {len(shown)} of {len(numbers)} trials)"
        ax.set_title(title)
        kinds = [k for k in STAGE_KINDS if any(b.kind == k for b in bars)]
        handles = [
            Patch(facecolor=STAGE_STYLE[k][0], hatch=STAGE_STYLE[k][1], edgecolor=style.BLACK, label=k) for k in kinds
        ]
        if any(not b.ok for b in bars):
            handles.append(Patch(facecolor="white", edgecolor=style.RED, linewidth=2, label="stage failed"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return style.png(fig)


def _stage_bar(ax: Axes, bar: StageBar) -> None:
    colour, hatch = STAGE_STYLE[bar.kind]
    ax.barh(
        bar.number,
        max(bar.duration, 0.05),
        left=bar.start,
        height=0.7,
        color=colour,
        hatch=hatch,
        edgecolor=style.RED if not bar.ok else style.BLACK,
        linewidth=2 if not bar.ok else 0.3,
    )


def comparison_chart(comparison: BaselineComparison | None) -> bytes | None:
    """Baseline vs current, each figure relative to the baseline's (1.0), with confidence intervals as whiskers."""
    rows = [r for r in comparison.rows if r.baseline.value] if comparison is not None else []
    if not rows:
        return None
    with style.figure(8, max(2.5, 0.9 + 0.35 * len(rows))) as fig:
        ax = fig.add_subplot()
        for index, row in enumerate(rows):
            scale = row.baseline.value
            for estimate, offset, marker, colour in (
                (row.baseline, -0.15, "s", style.ORANGE),
                (row.current, 0.15, "o", style.BLUE),
            ):
                y = index + offset
                if estimate.low is not None and estimate.high is not None:
                    ax.plot([estimate.low / scale, estimate.high / scale], [y, y], color=colour, linewidth=2)
                ax.scatter([estimate.value / scale], [y], marker=marker, color=colour, s=40, zorder=3)
        ax.scatter([], [], marker="s", color=style.ORANGE, label="baseline (95% interval)")
        ax.scatter([], [], marker="o", color=style.BLUE, label="current (95% interval)")
        ax.axvline(1.0, color=style.GREY, linestyle=":")
        ax.set_yticks(range(len(rows)), [f"{r.metric} {r.level}".strip() + f" ({r.better} is better)" for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("relative to the baseline")
        ax.set_title("baseline vs current")
        _legend(ax)
        return style.png(fig)


def all_charts(data: ReportData) -> dict[str, bytes]:
    """Every chart that has something to show, by file stem, in the order the report presents them."""
    drawn: dict[str, bytes | None] = {
        "objective": objective_chart(data),
        "history": history_chart(data),
        "latency_throughput": latency_chart(data),
        "percentiles": percentile_chart(data),
        "timeline": timeline_chart(data),
        "comparison": comparison_chart(data.comparison),
    }
    return {name: image for name, image in drawn.items() if image is not None}


def _legend(ax: Axes, **options: Any) -> None:
    """A legend when something is labelled: matplotlib warns on the terminal about an empty one (a run whose
    every trial failed has nothing to label), and the warning would read like a problem of the run."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", **options)
