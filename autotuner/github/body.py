"""What the PR comment and the job summary say, composed from each spec's files (pure: text in, text out).

The inputs are the report renderer's public output, not its internals: ``report.md`` (split at its ``## ``
headings: the headline lines before the first heading, "Launch the best config", "Against the baseline...",
"Trials, best first"), the chart PNG names, ``headline.mmd``, and the typed ``results.json`` of the run and of
main's baseline. The report owns the wording; this module owns the layout of a comment: headline, the verdict
against main with its numbers, whether the recommended config changed, the launch command, then collapsed
details, and a hard size budget (65,536 characters for a comment, 1 MiB for a job summary) that is met by
dropping detail in a fixed order, never by cutting Markdown in the middle of a table row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..compare import Comparison, MetricVerdict
from ..report import simple_comparison
from ..report.formatting import percent, value
from ..results import StudyResult

# Worst first: the aggregate verdict of several specs is the worst of theirs.
VERDICTS = (
    "error",
    "no-feasible-config",
    "regressed",
    "inconclusive",
    "not-compared",
    "no-baseline",
    "unchanged",
    "improved",
)
_SYNONYMS = {"better": "improved", "same": "unchanged", "worse": "regressed"}
ICONS = {
    "error": "💥",
    "no-feasible-config": "❌",
    "regressed": "🔻",
    "inconclusive": "❔",
    "not-compared": "➖",
    "no-baseline": "🆕",
    "unchanged": "✅",
    "improved": "🚀",
}
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)\)")
_LINK = re.compile(r"(?<!!)\[(?P<label>[^\]]+)\]\((?P<target>[^)\s]+)\)")
_CHART = re.compile(r"^charts/(?P<name>[A-Za-z0-9_.-]+)\.png$")


def normalise_verdict(text: object) -> str | None:
    """compare.py's word (better/same/regressed/inconclusive, or improved/unchanged) as one of ``VERDICTS``."""
    if not isinstance(text, str):
        return None
    word = _SYNONYMS.get(text.strip().lower(), text.strip().lower())
    return word if word in VERDICTS else None


def worst(verdicts: Sequence[str]) -> str:
    return min(verdicts, key=VERDICTS.index) if verdicts else "error"


@dataclass(frozen=True)
class SpecOutcome:
    """One spec's run as the publisher found it on disk."""

    spec: str
    verdict: str
    result: StudyResult | None = None
    baseline: StudyResult | None = None
    report_md: str = ""
    charts: tuple[str, ...] = ()  # chart names present as charts/<name>.png
    mermaid: str = ""  # the headline chart (xychart-beta), without fences
    error: str = ""  # why there is no result (missing or invalid results.json)
    verdict_detail: str = ""  # e.g. "regression threshold 5%" or "no statistical comparison recorded"
    comparison: Comparison | None = None  # compare.py's verdict against main's baseline, when one was made


@dataclass(frozen=True)
class Links:
    """Where images and files live for this rendering: chart URLs per spec, the artifact, the run."""

    chart_urls: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # spec -> chart name -> URL
    artifact_url: str | None = None
    run_url: str | None = None
    commit: str = ""


def split_sections(markdown: str) -> tuple[str, dict[str, str]]:
    """(the text before the first ``## `` heading, {heading: body}); headings as written, without ``## ``."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = preamble
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
            continue
        current.append(line)
    return "\n".join(preamble).strip(), {k: "\n".join(v).strip() for k, v in sections.items()}


def section(sections: Mapping[str, str], prefix: str) -> tuple[str, str] | None:
    """The first section whose heading starts with ``prefix`` (headings carry verdicts: "Against the baseline: x")."""
    for heading, body in sections.items():
        if heading.startswith(prefix):
            return heading, body
    return None


def headline_lines(preamble: str) -> list[str]:
    """The report's headline: its bold ``**Key:** ...`` lines (the title and the chart are laid out by us)."""
    return [line.rstrip() for line in preamble.splitlines() if line.startswith("**")]


def rewrite_images(text: str, urls: Mapping[str, str]) -> str:
    """Chart links made absolute; an image with no URL is dropped (a relative link renders as a broken image)."""
    out: list[str] = []
    for line in text.splitlines():
        match = _IMAGE.search(line)
        if match is None:
            out.append(line)
            continue
        chart = _CHART.match(match.group("target"))
        url = urls.get(chart.group("name")) if chart else None
        if url is None and not match.group("target").startswith(("http://", "https://")):
            continue
        out.append(line.replace(match.group("target"), url) if url else line)
    return _LINK.sub(_absolute_or_label, "\n".join(out))


def _absolute_or_label(match: re.Match[str]) -> str:
    """A link into the report folder (a trial's log) means nothing on a PR page: keep its label only."""
    target = match.group("target")
    return match.group(0) if target.startswith(("http://", "https://", "#")) else match.group("label")


def best_config_json(outcomes: Sequence[SpecOutcome]) -> dict[str, object]:
    """The ``best-config`` output: per spec, the config, its ids, objective and launch command (or null)."""
    data: dict[str, object] = {}
    for o in outcomes:
        best = o.result.best() if o.result is not None else None
        data[o.spec] = (
            None
            if best is None or o.result is None
            else {
                "config": best.config,
                "config_id": best.config_id,
                "config_hash": best.config_hash,
                "objective": best.objective,
                "objective_name": o.result.objectives[0] if o.result.objectives else None,
                "command": o.result.best_command,
            }
        )
    return data


def vs_main(o: SpecOutcome) -> list[str]:
    """The verdict against main with the objective's numbers, and whether the recommended config changed."""
    icon = ICONS.get(o.verdict, "")
    lines = [f"**Verdict vs main:** {icon} **{o.verdict}**"]
    c = o.comparison
    if c is not None:
        objective = c.objectives[0] if c.objectives else None
        if objective is not None:
            lines[0] += ": " + _metric_change(objective)
        how = "same-runner A/B" if c.mode == "ab" else "stored baseline, runner drift not cancelled"
        lines[0] += f"; {how}; threshold {c.threshold:.0%} at {c.confidence:.0%} confidence"
        if c.current_config_id is not None and c.baseline_config_id is not None:
            lines.append(
                f"**Recommended config:** changed: `{c.baseline_config_id}` on main -> `{c.current_config_id}`"
                if c.config_changed
                else f"**Recommended config:** unchanged (`{c.current_config_id}`)"
            )
        regressed = [m for m in c.slo_metrics if m.verdict in ("regressed", "inconclusive")]
        for m in regressed[:5]:
            lines.append(f"**{m.verdict}:** {m.label}: {_metric_change(m)}")
        for text in [*c.slo_findings, *c.warnings][:5]:
            lines.append(f"**Note:** {text}")
        return lines
    if o.verdict_detail:
        lines[0] += f" ({o.verdict_detail})"
    if o.result is None or o.baseline is None:
        return lines
    comparison = simple_comparison(o.result, o.baseline)
    row = next((r for r in comparison.rows if r.metric == "objective"), None) if comparison else None
    metric = o.result.objectives[0].split(" ", 1)[-1] if o.result.objectives else "objective"
    if row is not None:
        change = percent(row.change) if row.change is not None else "n/a"
        lines[0] += (
            f": {metric} {value(row.current.value, metric)} vs main's {value(row.baseline.value, metric)} ({change})"
        )
    ours, theirs = o.result.best(), o.baseline.best()
    if ours is not None and theirs is not None:
        if ours.config_hash == theirs.config_hash:
            lines.append(f"**Recommended config:** unchanged (`{ours.config_id}`)")
        else:
            lines.append(f"**Recommended config:** changed: `{theirs.config_id}` on main -> `{ours.config_id}`")
    elif theirs is not None:
        lines.append(f"**Recommended config:** none now; main recommends `{theirs.config_id}`")
    return lines


def _metric_change(m: MetricVerdict) -> str:
    """``output_throughput 140 tok/s vs main's 123 tok/s (+13.8% [+5.1%, +22.0%])``."""
    now = value(m.current.estimate, m.metric) if m.current is not None else "n/a"
    before = value(m.baseline.estimate, m.metric) if m.baseline is not None else "n/a"
    change = ""
    if m.change is not None and m.change.estimate is not None:
        change = percent(m.change.estimate)
        if m.change.low is not None and m.change.high is not None:
            change += f" [{percent(m.change.low)}, {percent(m.change.high)}]"
    return f"{m.metric} {now} vs main's {before}" + (f" ({change})" if change else "")


# Detail levels, most to least: each drops one more part to fit a size budget.
FULL, NO_CHARTS, SHORT_TABLE, NO_COMPARISON, MINIMAL = range(5)


def spec_block(o: SpecOutcome, links: Links, level: int = FULL, table_rows: int | None = None) -> str:
    """One spec's part of a comment or summary, at a detail ``level``."""
    parts = [f"### {o.spec}"]
    if o.result is None:
        parts.append(f"{ICONS['error']} no results: {o.error or 'results.json missing'}")
        return "\n\n".join(parts)
    urls = links.chart_urls.get(o.spec, {})
    preamble, sections = split_sections(o.report_md)
    head = headline_lines(preamble)
    if not head and o.result.best() is None:
        head = ["**SLOs:** ❌ no config met the SLOs"]
    parts.append("  \n".join(head + vs_main(o)))
    if "objective" in urls:
        parts.append(f"![{o.spec}: objective per trial]({urls['objective']})")
    elif o.mermaid:
        parts.append(f"```mermaid\n{o.mermaid.strip()}\n```")
        if links.artifact_url:
            parts.append(f"Charts (PNG) and the full report are in [the run's artifact]({links.artifact_url}).")
    launch = section(sections, "Launch the best config")
    if launch is not None:
        parts.append("**Launch the best config:**\n\n" + rewrite_images(launch[1], urls))
    elif o.result.best_command:
        parts.append(f"**Launch the best config:**\n\n```bash\n{o.result.best_command}\n```")
    against = section(sections, "Against the baseline")
    if against is not None and level < NO_COMPARISON:
        parts.append(_details(against[0], rewrite_images(against[1], urls)))
    trials = section(sections, "Trials")
    if trials is not None and level < MINIMAL:
        body = trials[1] if level < SHORT_TABLE else _short_table(trials[1], table_rows or 10)
        parts.append(_details(f"{trials[0]} ({len(o.result.trials)} trials)", rewrite_images(body, urls)))
    others = {k: v for k, v in urls.items() if k != "objective"}
    if others and level < NO_CHARTS:
        images = "\n\n".join(f"![{name}]({url})" for name, url in others.items())
        parts.append(_details("Charts", images))
    return "\n\n".join(parts)


def compose(
    outcomes: Sequence[SpecOutcome], links: Links, mark: str, limit: int, *, title: str = "inference-autotuner"
) -> str:
    """The whole comment (or summary) within ``limit`` characters: detail is dropped spec by spec, evenly."""
    verdict = worst([o.verdict for o in outcomes])
    header = [f"## {title}: {ICONS.get(verdict, '')} {verdict}"]
    where = [f"{len(outcomes)} spec(s)"]
    if links.commit:
        where.append(f"commit `{links.commit[:12]}`")
    if links.run_url:
        where.append(f"[workflow run]({links.run_url})")
    if links.artifact_url and links.artifact_url != links.run_url:
        where.append(f"[results and full reports]({links.artifact_url})")
    header.append("_" + ", ".join(where) + "_")
    top = (f"{mark}\n" if mark else "") + header[0] + "\n\n" + header[1]
    for level in (FULL, NO_CHARTS, SHORT_TABLE, NO_COMPARISON, MINIMAL):
        blocks = [spec_block(o, links, level) for o in outcomes]
        text = "\n\n".join([top, *blocks]) + "\n"
        if len(text) <= limit:
            return text
    return _truncate(text, limit)


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body.strip()}\n\n</details>"


def _short_table(text: str, rows: int) -> str:
    """A Markdown table cut to its header and first ``rows`` rows, saying how many were left out."""
    lines = text.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    if len(table) <= rows + 2:
        return text
    keep_until = table[rows + 1]  # header, separator, rows
    dropped = len(table) - rows - 2
    rest = [line for line in lines[table[-1] + 1 :]]
    return "\n".join([*lines[: keep_until + 1], "", f"_{dropped} more rows in the full report._", *rest])


def _truncate(text: str, limit: int) -> str:
    note = "\n\n_(cut to fit GitHub's size limit; the full report is in the run's artifact)_\n"
    cut = text[: max(limit - len(note), 0)]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    if cut.count("```") % 2:
        cut += "\n```"
    if cut.count("<details>") > cut.count("</details>"):
        cut += "\n</details>"
    return (cut + note)[:limit]
