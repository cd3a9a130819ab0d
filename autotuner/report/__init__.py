"""Reports: what a run found, computed from ``results.json`` (pure data) and drawn as Markdown, charts, Mermaid
and a self-contained HTML page. Nothing to the left of this package (results, study, trial) imports it.

Public surface: ``write_report`` (the files of one run), ``build_report`` (the data alone), and the renderers.
"""

from __future__ import annotations

from .comparison import BaselineComparison, ComparisonRow, Estimate, simple_comparison
from .data import ReportData, build_report
from .html import render_html
from .markdown import MAX_CHARS, render_markdown
from .writer import ReportFiles, write_report

__all__ = [
    "MAX_CHARS",
    "BaselineComparison",
    "ComparisonRow",
    "Estimate",
    "ReportData",
    "ReportFiles",
    "build_report",
    "render_html",
    "render_markdown",
    "simple_comparison",
    "write_report",
]
