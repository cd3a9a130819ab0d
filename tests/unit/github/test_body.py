"""What the comment says, laid out from the report's files, and how it fits GitHub's size limits."""

from __future__ import annotations

from pathlib import Path

from autotuner.compare import Comparison, Figure, MetricVerdict
from autotuner.github import Links, SpecOutcome, compose, marker, worst
from autotuner.github.body import rewrite_images, split_sections
from autotuner.results import StudyResult

from .conftest import FIXTURE

MARK = marker("tuning_specs/")


def outcome(report_dir: Path, **kwargs: object) -> SpecOutcome:
    run = report_dir / "smollm2-cpu" / "latest"
    result = StudyResult.read(run / "results.json")
    fields: dict[str, object] = {
        "spec": "smollm2-cpu",
        "verdict": "no-baseline",
        "result": result,
        "report_md": (run / "report.md").read_text(),
        "charts": tuple(sorted(p.stem for p in (run / "charts").glob("*.png"))),
        "mermaid": (run / "headline.mmd").read_text(),
    }
    fields.update(kwargs)
    return SpecOutcome(**fields)  # type: ignore[arg-type]


def test_comment_has_headline_command_table_and_charts(rendered_run: Path) -> None:
    o = outcome(rendered_run)
    urls = {name: f"https://raw.example/{name}.png" for name in o.charts}
    text = compose([o], Links(chart_urls={"smollm2-cpu": urls}, commit="a" * 40), MARK, 65536)
    assert text.startswith(MARK + "\n## inference-autotuner: ")
    assert "**Best config:**" in text and "**Verdict vs main:** 🆕 **no-baseline**" in text
    assert "```bash\n" in text and "llamacpp_server" in text
    assert "<details><summary>Trials, best first (3 trials)</summary>" in text
    assert "https://raw.example/objective.png" in text and "](charts/" not in text
    assert "```mermaid" not in text


def test_without_chart_urls_the_mermaid_chart_and_artifact_link(rendered_run: Path) -> None:
    o = outcome(rendered_run)
    text = compose([o], Links(artifact_url="https://github.com/o/r/actions/runs/1"), MARK, 65536)
    assert "```mermaid\nxychart-beta" in text
    assert "[the run's artifact](https://github.com/o/r/actions/runs/1)" in text
    assert "](charts/" not in text and "![" not in text


def test_verdict_numbers_and_config_change_from_the_comparison(rendered_run: Path) -> None:
    figure = Figure(estimate=100.0, low=98.0, high=102.0, confidence=0.95, n=3)
    comparison = Comparison(
        mode="ab",
        verdict="regressed",
        threshold=0.05,
        confidence=0.95,
        baseline_config_id="n-parallel=2,threads=2",
        current_config_id="n-parallel=4,threads=2",
        config_changed=True,
        objectives=[
            MetricVerdict(
                metric="output_throughput",
                direction="maximize",
                baseline=figure,
                current=Figure(estimate=80.0, confidence=0.95),
                change=Figure(estimate=-0.2, low=-0.25, high=-0.15, confidence=0.95),
                verdict="regressed",
            )
        ],
    )
    o = outcome(rendered_run, verdict="regressed", comparison=comparison)
    text = compose([o], Links(), MARK, 65536)
    assert "**Verdict vs main:** 🔻 **regressed**: output_throughput 80" in text
    assert "vs main's 100" in text and "-20.0%" in text and "same-runner A/B" in text
    assert "changed: `n-parallel=2,threads=2` on main -> `n-parallel=4,threads=2`" in text
    assert text.splitlines()[1].endswith("regressed")


def test_simple_figures_against_a_baseline_without_a_comparison(rendered_run: Path) -> None:
    baseline = StudyResult.read(FIXTURE)
    o = outcome(rendered_run, verdict="not-compared", baseline=baseline)
    text = compose([o], Links(), MARK, 65536)
    assert "vs main's" in text and "(+0.0%)" in text
    assert "**Recommended config:** unchanged" in text


def test_a_huge_report_is_fitted_without_breaking_tables(rendered_run: Path) -> None:
    o = outcome(rendered_run)
    preamble, sections = split_sections(o.report_md)
    row = "| 9 | 9 | `n-batch=2048,n-parallel=4,threads=2` | infeasible | - | D(64,64)@4 | " + "x" * 150 + " | 1s | - |"
    huge = o.report_md.replace("## Trials, best first\n", "## Trials, best first\n") + ""
    trials = sections["Trials, best first"]
    big_table = trials + "\n" + "\n".join([row] * 2000)
    huge = o.report_md.replace(trials, big_table)
    many = [outcome(rendered_run, spec=f"spec-{i}", report_md=huge) for i in range(3)]
    text = compose(many, Links(), MARK, 65536)
    assert len(text) <= 65536
    assert text.count("<details>") == text.count("</details>")
    assert "more rows in the full report" in text
    for line in text.splitlines():
        if line.startswith("| 9 |"):
            assert line.endswith("|")


def test_missing_results_are_said(tmp_path: Path) -> None:
    o = SpecOutcome(spec="gpu-spec", verdict="error", error="reports/gpu-spec/latest/results.json: not found")
    text = compose([o], Links(), MARK, 65536)
    assert "💥 error" in text.splitlines()[1] and "not found" in text


def test_worst_verdict_and_sections() -> None:
    assert worst(["improved", "regressed", "no-baseline"]) == "regressed"
    assert worst(["improved", "unchanged"]) == "unchanged"
    assert worst([]) == "error"
    preamble, sections = split_sections("# t\n**a**\n## One\n```\n## not a heading\n```\n## Two\nx")
    assert preamble == "# t\n**a**" and list(sections) == ["One", "Two"]
    assert "## not a heading" in sections["One"]
    assert rewrite_images("![a](charts/x.png)\n![b](https://h/y.png)\ntext", {}) == "![b](https://h/y.png)\ntext"
