"""Generated documentation: the pages under ``docs/`` that are rendered from the code instead of written by hand.

``python -m autotuner.docgen`` rewrites them; ``python -m autotuner.docgen --check`` exits 1 naming every page
that differs from what the code generates (a unit test does the same, so a model or option change without the
regenerated page fails the tests). Run it from the repository root, or pass ``--docs DIR``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def pages() -> dict[str, Callable[[], str]]:
    """File name under ``docs/`` -> the function that renders it (imported lazily: the CLI page imports pytest)."""
    from . import cli_reference, spec_reference

    return {"spec-reference.md": spec_reference.render, "cli.md": cli_reference.render}


def stale(docs: Path) -> list[str]:
    """The generated pages under ``docs`` whose text differs from what the code renders now (missing ones too)."""
    found = []
    for name, render in pages().items():
        path = docs / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != render():
            found.append(name)
    return found


def write(docs: Path) -> list[Path]:
    """Render every page into ``docs``; returns the files written."""
    docs.mkdir(parents=True, exist_ok=True)
    written = []
    for name, render in pages().items():
        path = docs / name
        path.write_text(render(), encoding="utf-8")
        written.append(path)
    return written
