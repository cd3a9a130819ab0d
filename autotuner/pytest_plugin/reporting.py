"""What the run reports: a terminal summary per spec and the pytest-benchmark JSON export.

Both are built from the tests' reports, not from in-process state, because under pytest-xdist the tests run in
worker processes and only their reports (with the data each tuning test attached) reach the controller that
prints the summary.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from . import benchmark
from .state import ItemOutcome, TuneState

DATA_ATTR = "autotuner"  # the attribute a tuning test's reports carry (JSON-safe, so xdist can send it)


def record_report(state: TuneState, report: pytest.TestReport) -> None:
    """Fold one phase's report (setup, call, teardown) into the test's outcome and keep its latest data."""
    known = state.outcomes.setdefault(report.nodeid, ItemOutcome(report.nodeid))
    data = getattr(report, DATA_ATTR, None)
    if isinstance(data, dict):
        known.data = data
    if hasattr(report, "wasxfail"):
        known.outcome, known.message = "xfailed", str(report.wasxfail)
    elif report.failed:
        known.outcome = "error" if report.when in ("setup", "teardown") else "failed"
        text = report.longreprtext.strip()
        known.message = text.splitlines()[0] if text else ""
    elif report.skipped:
        known.outcome = "skipped"
        longrepr = report.longrepr
        known.message = str(longrepr[2]) if isinstance(longrepr, tuple) else ""


def by_spec(state: TuneState) -> dict[str, list[ItemOutcome]]:
    specs: dict[str, list[ItemOutcome]] = {}
    for outcome in state.outcomes.values():
        spec = outcome.data.get("spec")
        if isinstance(spec, str):
            specs.setdefault(spec, []).append(outcome)
    for name in state.finished:
        specs.setdefault(name, [])
    return specs


def summary_lines(state: TuneState) -> list[str]:
    lines: list[str] = []
    for spec, outcomes in by_spec(state).items():
        verdict = next((o for o in outcomes if o.data.get("kind") == "verdict" and "summary" in o.data), None)
        tests = Counter(o.outcome for o in outcomes if o.data.get("kind") != "verdict")
        tally = ", ".join(f"{n} {what}" for what, n in sorted(tests.items())) or "none ran"
        if verdict is not None:
            lines.extend(str(verdict.data["summary"]).splitlines())
            lines.append(f"  verdict: {verdict.outcome}; config tests: {tally}")
            if verdict.data.get("results"):
                lines.append(f"  results: {verdict.data['results']}")
        elif spec in state.finished:
            from .judge import verdict_summary

            lines.extend(verdict_summary(state.finished[spec]).splitlines())
            lines.append(f"  verdict: not run; config tests: {tally}")
        else:
            lines.append(f"{spec}: verdict not run; config tests: {tally}")
    return lines


def terminal_summary(reporter: Any, state: TuneState) -> None:
    lines = summary_lines(state)
    if not lines:
        return
    reporter.write_sep("=", "autotuner")
    for line in lines:
        reporter.write_line(line)
    if state.settings.benchmark_json is not None:
        reporter.write_line(f"benchmark JSON: {state.settings.benchmark_json}")


def benchmark_entries(state: TuneState) -> list[dict[str, Any]]:
    """One entry per feasible config and one ``[best]`` per spec whose verdict ran (see ``benchmark``)."""
    entries: list[dict[str, Any]] = []
    for spec, outcomes in by_spec(state).items():
        verdict = next((o.data for o in outcomes if o.data.get("kind") == "verdict"), {})
        repeats = verdict.get("measurements") or {}  # config hash -> every measurement, when the best was raced
        for outcome in outcomes:
            data = outcome.data
            if data.get("kind") == "verdict":
                best = data.get("best")
                if isinstance(best, dict):
                    nodeid = outcome.nodeid.replace("[verdict]", "[best]")
                    entries.extend(_entry(spec, nodeid, str(data.get("objective", "")), best, repeats, best=True))
            elif data.get("outcome") == "feasible":
                objective = str(data.get("objective", ""))
                entries.extend(_entry(spec, outcome.nodeid, objective, data, repeats, best=False))
    return entries


def _entry(
    spec: str, nodeid: str, objective: str, data: dict[str, Any], repeats: dict[str, Any], *, best: bool
) -> list[dict[str, Any]]:
    objectives = data.get("objectives") or []
    value = objectives[0].get("value") if objectives and isinstance(objectives[0], dict) else None
    if not isinstance(value, (int, float)):
        return []
    values = repeats.get(str(data.get("config_hash")))
    measured = [float(v) for v in values] if isinstance(values, list) and values else [float(value)]
    extra = {
        "config_id": data.get("config_id"),
        "config_hash": data.get("config_hash"),
        "config": data.get("config"),
        "level": objectives[0].get("level"),
        "slo": data.get("slo", ""),
        "best": best,
    }
    made = benchmark.entry(
        name=nodeid.rsplit("::", 1)[-1],
        fullname=nodeid,
        group=spec,
        objective=objective,
        values=measured,
        extra=extra,
    )
    return [made] if made is not None else []


def write_benchmark_json(config: pytest.Config, state: TuneState) -> None:
    path = state.settings.benchmark_json
    if path is None:
        return
    benchmark.write(path, benchmark.document(config, benchmark_entries(state)))
