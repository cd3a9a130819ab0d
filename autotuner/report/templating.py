"""The Jinja2 environments the Markdown and HTML renderers share: templates shipped in the package, the same
number formatting (formatting.py) as filters, undefined names as errors (a typo in a template fails a test
instead of printing nothing)."""

from __future__ import annotations

import functools

import jinja2

from . import formatting


def md_cell(text: object) -> str:
    """Text safe inside a Markdown table cell: no pipe ends the cell early, no newline ends the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


@functools.cache
def environment(*, html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("autotuner.report", "templates"),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["v"] = formatting.value
    env.filters["pct"] = formatting.percent
    env.globals["interval"] = formatting.interval
    env.filters["secs"] = formatting.seconds
    env.filters["short"] = formatting.shorten
    env.filters["cell"] = md_cell
    return env
