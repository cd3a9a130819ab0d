"""Table cells for the generated pages: help texts and descriptions are plain text, Markdown is not.

``<spec>`` would vanish as an unknown HTML tag, ``*.journal, *.log`` and ``N*K..(N+1)*K`` would turn italic,
and a ``|`` would split the cell; code spans (between backticks) are left alone because Markdown shows them
verbatim.
"""

from __future__ import annotations

import re


def cell(text: str) -> str:
    """``text`` on one line, safe inside a Markdown table cell."""
    parts = re.split(r"(`[^`]*`)", " ".join(text.split()))
    for index in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[index] = parts[index].replace("<", "&lt;").replace("*", "\\*")
    return "".join(parts).replace("|", "\\|")
