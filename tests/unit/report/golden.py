"""Golden Markdown reports: the cases, and the only way to rewrite their files.

Tests compare against ``tests/golden/report/*.md`` and never write them. After an intended change to the report,
regenerate them explicitly and review the diff:

    python -m tests.unit.report.golden
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from autotuner.report import build_report, render_markdown
from autotuner.results import StudyResult

from .factory import sample_study, study

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "report"
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "smollm2-cpu-results.json"  # schema 1: a grid of 3, all feasible
# schema 2 (ranking, per-level intervals): TPE, 3 trials, the baseline config infeasible
FIXTURE_RANKED = ROOT / "tests" / "fixtures" / "report" / "smollm2-cpu-tpe-results.json"
CHART_LINKS = {
    name: f"charts/{name}.png" for name in ("objective", "history", "latency_throughput", "percentiles", "timeline")
}


def _sample() -> str:
    data = build_report(sample_study(), run_dir=Path("/runs/smollm2-cpu/run-1"))
    return render_markdown(data, CHART_LINKS, html_name="report.html")


def _sample_against_baseline() -> str:
    baseline = sample_study()
    baseline.best_trial = 2
    assert baseline.environment is not None
    baseline.environment.engine = "llamacpp (xllamacpp 2026.09.1)"
    data = build_report(sample_study(), baseline=baseline, run_dir=Path("/runs/smollm2-cpu/run-1"))
    return render_markdown(data, {**CHART_LINKS, "comparison": "charts/comparison.png"})


def _sample_without_images() -> str:
    return render_markdown(build_report(sample_study()))  # Mermaid replaces the headline chart


def _no_feasible_config() -> str:
    trials = [t for t in sample_study().trials if t.outcome != "feasible"]
    return render_markdown(build_report(study(trials, best=None, baseline=3)))


def _sample_ranked() -> str:
    """Repeats, a tie-set and intervals (StudyResult.ranking): means in the headline, a mean column, tie reasons."""
    from .test_data import ranked_study

    return render_markdown(build_report(ranked_study(), run_dir=Path("/runs/smollm2-cpu/run-1")), CHART_LINKS)


def _real_run() -> str:
    result = StudyResult.read(FIXTURE)
    run_dir = Path("/tmp/landscape/repeat-reports/smollm2-cpu/20261122-113954-f75d46")
    return render_markdown(build_report(result, run_dir=run_dir), CHART_LINKS, html_name="report.html")


def _real_ranked_run_against_an_earlier_run() -> str:
    result = StudyResult.read(FIXTURE_RANKED)
    run_dir = Path("/tmp/r/smollm2-cpu/20261122-134517-4904c1")
    data = build_report(result, baseline=StudyResult.read(FIXTURE), run_dir=run_dir)
    return render_markdown(data, {**CHART_LINKS, "comparison": "charts/comparison.png"}, html_name="report.html")


CASES: dict[str, Callable[[], str]] = {
    "sample": _sample,
    "sample-against-baseline": _sample_against_baseline,
    "sample-without-images": _sample_without_images,
    "sample-ranked": _sample_ranked,
    "no-feasible-config": _no_feasible_config,
    "smollm2-cpu-real-run": _real_run,
    "smollm2-cpu-ranked-real-run-against-earlier-run": _real_ranked_run_against_an_earlier_run,
}


def path(name: str) -> Path:
    return GOLDEN / f"{name}.md"


def main() -> int:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, render in CASES.items():
        path(name).write_text(render(), encoding="utf-8")
        print(f"wrote {path(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
