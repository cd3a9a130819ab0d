"""The Markdown report: golden files, the 65,536-character limit at any size, Markdown-safe cells."""

from __future__ import annotations

import difflib
import re

import pytest

from autotuner.report import MAX_CHARS, build_report, render_markdown
from autotuner.report.markdown import TRIAL_ROWS

from . import golden
from .factory import large_study, sample_study


@pytest.mark.parametrize("name", sorted(golden.CASES))
def test_golden(name: str) -> None:
    expected_path = golden.path(name)
    assert expected_path.exists(), f"missing {expected_path}: run python -m tests.unit.report.golden"
    expected = expected_path.read_text(encoding="utf-8")
    actual = golden.CASES[name]()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True), "golden", "rendered", n=2
            )
        )
        pytest.fail(f"{name} differs from its golden file (if intended: python -m tests.unit.report.golden)\n{diff}")


@pytest.mark.parametrize("count", [120, 600, 2000])
def test_any_number_of_trials_fits_a_comment_and_keeps_the_headline(count: int) -> None:
    data = build_report(large_study(count))
    text = render_markdown(data, golden.CHART_LINKS)
    assert len(text) <= MAX_CHARS
    assert text.startswith("# smollm2-cpu: autotuner report\n\n**Best config:** ")
    shown = len(re.findall(r"^\| \d+ \| \d+ \| `", text, flags=re.M))  # rows of the trial table
    assert 0 < shown <= TRIAL_ROWS
    assert f"_Showing {shown} of {count} trials; {count - shown} more are in `results.json`._" in text
    assert "★ best" in text  # the best row is first, so it is never cut


def test_long_reasons_and_configs_do_not_blow_the_limit() -> None:
    result = large_study(700)
    for t in result.trials:
        t.config_id = t.config_id + ",pad=" + "y" * 900
    text = render_markdown(build_report(result), golden.CHART_LINKS)
    assert len(text) <= MAX_CHARS and "**Best config:**" in text


def test_a_report_that_cannot_fit_by_dropping_rows_is_cut_at_the_end() -> None:
    result = sample_study()
    result.best_command = "x" * 100_000
    text = render_markdown(build_report(result))
    assert len(text) <= MAX_CHARS
    assert text.startswith("# smollm2-cpu: autotuner report")
    assert text.endswith("_(report cut to fit 65,536 characters; see results.json)_\n")


def test_table_cells_escape_pipes_and_newlines() -> None:
    result = sample_study()
    result.trials[4].reason = "oom: a|b\nsecond line"
    text = render_markdown(build_report(result))
    row = next(line for line in text.splitlines() if line.startswith("| 5 |"))
    assert "a\\|b second line" in row
    assert row.count(" | ") == row.replace("\\|", "").count(" | ")


def test_the_baseline_comparison_is_rendered_only_when_present() -> None:
    assert "## Against the baseline" not in render_markdown(build_report(sample_study()))
    baseline = sample_study()
    text = render_markdown(build_report(sample_study(), baseline=baseline))
    assert "## Against the baseline" in text and "| objective | - | 126.3 tok/s | 126.3 tok/s | +0.0% |" in text
