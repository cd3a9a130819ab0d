"""The Markdown report: report data laid out by ``templates/report.md.j2``; no figure is computed here.

It must fit where it is posted: a GitHub comment or job summary holds at most 65,536 characters. Whatever the
number of trials, the long tables (trials, levels) are cut to what fits, the report says how many rows it left
out, and the headline (first in the text) is always kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .data import LevelRow, ReportData, TrialRow
from .mermaid import fenced
from .templating import environment

MAX_CHARS = 65_536  # GitHub's limit for a comment body and a job summary
TRIAL_ROWS = 100  # rows of the trial table before anything else is considered
LEVEL_ROWS = 40
CHART_TITLES = {
    "history": "optimization history",
    "latency_throughput": "latency vs throughput, SLO thresholds and Pareto front",
    "percentiles": "TTFT, TPOT and E2E percentiles vs concurrency: best vs baseline config",
    "timeline": "where the time went: stages of each trial",
    "comparison": "baseline vs current with confidence intervals",
}


@dataclass(frozen=True)
class _LogRow:
    label: str
    path: str


def render_markdown(
    data: ReportData,
    charts: Mapping[str, str] | None = None,
    *,
    results_name: str = "results.json",
    html_name: str | None = None,
    limit: int = MAX_CHARS,
) -> str:
    """The report as Markdown; ``charts`` maps chart names to image links (without any, Mermaid replaces the
    headline chart). At most ``limit`` characters: table rows are dropped from the end until it fits."""
    links = dict(charts or {})
    trial_rows = min(len(data.trials), TRIAL_ROWS)
    level_rows = min(len(data.best_levels), LEVEL_ROWS)
    while True:
        text = _render(data, links, data.trials[:trial_rows], data.best_levels[:level_rows], results_name, html_name)
        if len(text) <= limit:
            return text
        if trial_rows > 0:
            trial_rows = min(trial_rows - 1, int(trial_rows * min(0.9, limit / len(text))))
        elif level_rows > 0:
            level_rows = min(level_rows - 1, int(level_rows * min(0.9, limit / len(text))))
        else:
            return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    """Last resort (a huge manifest or command): keep the beginning, where the headline is, and say so."""
    tail = "\n\n_(report cut to fit 65,536 characters; see results.json)_\n"
    return text[: max(limit - len(tail), 0)] + tail


def _render(
    data: ReportData,
    charts: dict[str, str],
    rows: tuple[TrialRow, ...],
    levels: tuple[LevelRow, ...],
    results_name: str,
    html_name: str | None,
) -> str:
    template = environment(html=False).get_template("report.md.j2")
    return template.render(
        d=data,
        charts={name: charts.get(name) for name in ("objective", *CHART_TITLES)},
        chart_list=[(name, title) for name, title in CHART_TITLES.items() if name in charts],
        mermaid="" if "objective" in charts else fenced(data),
        rows=rows,
        hidden=len(data.trials) - len(rows),
        level_rows=levels,
        checks=next((lv.checks for lv in data.best_levels if lv.checks), ()),  # the SLO columns
        levels_hidden=len(data.best_levels) - len(levels),
        log_rows=_log_rows(data),
        results_name=results_name,
        html_name=html_name,
    )


def _log_rows(data: ReportData) -> list[_LogRow]:
    """The logs a reader opens first: the best config's and the baseline config's, then the failures'."""
    found: list[_LogRow] = []
    for row in data.trials:
        if row.engine_log is None:
            continue
        if row.best:
            found.insert(0, _LogRow(f"best config's engine log (trial {row.number})", row.engine_log))
        elif row.baseline:
            found.append(_LogRow(f"baseline config's engine log (trial {row.number})", row.engine_log))
    failures = [r for r in data.trials if r.outcome == "failed" and r.engine_log is not None]
    for row in failures[:5]:
        found.append(_LogRow(f"trial {row.number} ({row.failure_kind or 'failed'})", row.engine_log or ""))
    return found
