"""Lists of config names put into one sentence, shared by the terminal summary, the pytest verdict and the report.

A tie-set on a noisy machine can hold twenty configs (one recording pass of the CPU default tied 20 with its best),
and a headline that names all of them is unreadable; the full list is always shown beside it (the summary's
"tied:" lines, the report's ranking table), so the sentence names the first few in tie-break order and counts the
rest.
"""

from __future__ import annotations

from collections.abc import Sequence

NAMED = 3  # configs named in one sentence before the rest are counted


def few(names: Sequence[str], limit: int = NAMED) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``, or ``"a, b, c and 17 more"`` beyond ``limit`` names."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if not names:
        return ""
    if len(names) > limit:
        return f"{', '.join(names[:limit])} and {len(names) - limit} more"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"
