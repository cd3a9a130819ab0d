"""The self-contained HTML report: one file with its charts embedded as data URIs, for people who download the
run's artifact and open it in a browser (no server, no network: it references no external URL)."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from .data import ReportData
from .markdown import CHART_TITLES
from .templating import environment


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(data: ReportData, charts: Mapping[str, bytes], *, results_name: str = "results.json") -> str:
    """Every trial (no truncation: a file, not a comment), charts inline."""
    images = {name: data_uri(png) for name, png in charts.items()}
    template = environment(html=True).get_template("report.html.j2")
    return template.render(
        d=data,
        images={name: images.get(name) for name in ("objective", *CHART_TITLES)},
        chart_list=[(n, t) for n, t in CHART_TITLES.items() if n in images and n != "comparison"],
        results_name=results_name,
    )
