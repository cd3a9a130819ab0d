"""Job summary within 1 MiB, step outputs in the delimiter form, and when the job fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.github import fit_bytes, job_failure, read_outputs, write_outputs, write_summary
from autotuner.github.summary import SUMMARY_LIMIT, format_output


def test_fit_bytes_counts_utf8_bytes() -> None:
    text = "| ✅ ok |\n" * 200_000  # 3-byte characters: far over 1 MiB in bytes
    fitted = fit_bytes(text)
    assert len(fitted.encode("utf-8")) <= SUMMARY_LIMIT
    assert fitted.rstrip().endswith("artifact)_")
    assert fit_bytes("short") == "short"
    assert fit_bytes("too long for no room", 5) == ""


def test_summary_appends_within_what_is_left(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("x" * (SUMMARY_LIMIT - 1000))
    write_summary("line\n" * 1000, {"GITHUB_STEP_SUMMARY": str(target)})
    assert target.stat().st_size <= SUMMARY_LIMIT
    assert write_summary("anything", {}) is None


def test_outputs_roundtrip_multiline_json(tmp_path: Path) -> None:
    target = tmp_path / "output"
    target.write_text("earlier=1\n")
    value = '{\n  "a": "x<<y"\n}'
    write_outputs({"best-config": value, "verdict": "improved"}, {"GITHUB_OUTPUT": str(target)})
    assert read_outputs(target) == {"earlier": "1", "best-config": value, "verdict": "improved"}


def test_a_value_cannot_inject_another_output() -> None:
    entry = format_output("verdict", "improved\nfailure=")
    name, delimiter = entry.splitlines()[0].split("<<")
    assert name == "verdict" and entry.endswith(f"\n{delimiter}\n") and entry.count(delimiter) == 2
    with pytest.raises(ValueError):
        format_output("a=b", "x")


@pytest.mark.parametrize(
    ("verdict", "exit_code", "fail_on_regression", "fails"),
    [
        ("improved", 0, True, False),
        ("unchanged", 0, True, False),
        ("no-baseline", 0, True, False),
        ("regressed", 1, True, True),
        ("regressed", 1, False, False),
        ("inconclusive", 1, True, True),
        ("inconclusive", 1, False, False),
        ("no-feasible-config", 1, False, True),
        ("error", None, False, True),
        ("improved", 1, True, True),  # e.g. --tune-strict failures
        ("improved", 2, False, True),
    ],
)
def test_job_failure(verdict: str, exit_code: int | None, fail_on_regression: bool, fails: bool) -> None:
    assert (job_failure(verdict, exit_code, fail_on_regression) is not None) == fails
