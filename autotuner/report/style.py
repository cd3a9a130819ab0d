"""The look of every chart, and how a figure becomes PNG bytes that are identical for identical data.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies) and every category
also has its own marker or hatch, so no chart relies on colour alone. Figures are drawn on an Agg canvas without
pyplot (no global figure state, safe in threads and under pytest) at a fixed size and dpi, inside fixed rc
settings, and saved without the metadata that changes between runs or matplotlib versions.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
RED = "#D55E00"  # vermillion: SLO thresholds (always dashed) and failures
PURPLE = "#CC79A7"
GREY = "#999999"

DPI = 100
RC: dict[Any, Any] = {  # typed loosely: matplotlib's stubs list every key as a Literal
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs everywhere
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "autotuner",
    "path.simplify": False,
    "legend.fontsize": 8,
    "legend.framealpha": 0.9,
}


@contextmanager
def figure(width: float, height: float) -> Iterator[Figure]:
    """A fresh figure drawn under the report's fixed settings (size in inches at ``DPI``)."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(fig)
        yield fig


def png(fig: Figure) -> bytes:
    """PNG bytes with no varying metadata (no software version, no timestamp)."""
    with matplotlib.rc_context(RC):
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
