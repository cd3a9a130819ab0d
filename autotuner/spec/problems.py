"""Spec problems: what is wrong, and exactly where, in words a person can act on."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """``("workload", "scenarios", 0)`` -> ``workload.scenarios[0]``; the root is ``<spec>``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<spec>"


@dataclass(frozen=True)
class SpecProblem:
    """One problem in one spec file, located at line and column (both 1-based)."""

    file: str
    line: int
    column: int
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {format_path(self.path)}: {self.message}"


class SpecError(Exception):
    """Raised when one or more spec files are invalid; carries every problem found, not only the first.

    Messages quote the values they refuse, and a spec template can make a value of anything in the environment
    (``runtime: "{{ env.HF_TOKEN }}"``): secrets are masked here, before any message reaches a terminal or a log.
    """

    def __init__(self, problems: Sequence[SpecProblem]):
        from ..secrets import Masker

        masker = Masker.from_environ()
        self.problems = [dataclasses.replace(p, message=masker.mask(p.message)) for p in problems]
        super().__init__("\n".join(str(p) for p in self.problems))
