"""The job summary, the step outputs, and whether the job fails: the runner's file protocols, written correctly.

- ``$GITHUB_STEP_SUMMARY``: Markdown appended per step; GitHub rejects a step's summary over 1 MiB (and shows an
  error instead of it), so the text is measured in UTF-8 bytes and shrunk to fit before it is written.
- ``$GITHUB_OUTPUT``: ``name<<DELIMITER`` blocks (the multi-line form, safe for JSON with newlines), with a random
  delimiter that cannot occur in the value, as GitHub's docs require to keep a value from injecting outputs.
- The job's fate is decided here in one pure function (``job_failure``) so the action's last step only reports it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SUMMARY_LIMIT = 1024 * 1024  # bytes, per step


def fit_bytes(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` cut (at a line end) so its UTF-8 encoding is at most ``limit`` bytes, saying that it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    note = "\n\n_(summary cut to GitHub's 1 MiB limit; the full report is in the run's artifact)_\n"
    room = limit - len(note.encode("utf-8"))
    if room <= 0:
        return ""
    cut = data[:room].decode("utf-8", errors="ignore")
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    return cut + note


def write_summary(text: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append ``text`` to the step summary (within 1 MiB with what this step already wrote); None outside Actions."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    used = path.stat().st_size if path.exists() else 0
    with path.open("a", encoding="utf-8") as handle:
        handle.write(fit_bytes(text, max(SUMMARY_LIMIT - used, 0)))
    return path


def format_output(name: str, value: str) -> str:
    """One ``$GITHUB_OUTPUT`` entry in the delimiter form."""
    if "\n" in name or "=" in name or "<" in name:
        raise ValueError(f"invalid output name {name!r}")
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
        if delimiter not in value:
            break
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def write_outputs(outputs: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_OUTPUT")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            handle.write(format_output(name, value))
    return path


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a ``$GITHUB_OUTPUT`` file (both forms) as the runner does: for tests and the action's last step."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            values[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        index += 1
    return values


def job_failure(verdict: str, pytest_exit: int | None, fail_on_regression: bool) -> str | None:
    """Why the job fails, or None. The tuning run's own failures count unless they are the regression the user
    chose to tolerate: pytest exits 1 when a test fails, which is how the spec verdict reports a regression too.

    - no results, or no config met the SLOs: fail (the suite's main assertion);
    - regressed, or inconclusive (a change beyond the threshold that the measurements cannot confirm: compare.py
      never lets it pass silently): fail when ``fail_on_regression``, else pass (reported, not fatal);
    - pytest exited 2-5 or was interrupted (usage, internal error, nothing collected): fail;
    - pytest exited 1 for anything else (e.g. ``--tune-strict`` failures): fail.
    """
    if verdict == "error":
        return "no results were produced (see the tuning step's log)"
    if verdict == "no-feasible-config":
        return "no config met the SLOs"
    if verdict in ("regressed", "inconclusive"):
        if not fail_on_regression:
            return None
        if verdict == "regressed":
            return "the best config regressed against main's baseline"
        return "inconclusive against main's baseline: a change beyond the threshold, not confirmed (rerun with more repeats)"
    if pytest_exit not in (None, 0):
        return f"pytest --tune exited with code {pytest_exit}"
    return None


def best_config_output(data: Mapping[str, object]) -> str:
    return json.dumps(data, sort_keys=True)
