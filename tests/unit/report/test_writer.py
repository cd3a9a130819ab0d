"""write_report and ``autotuner report``: the files of a run, self-contained HTML, links that resolve, exit codes."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from autotuner.cli import main
from autotuner.report import write_report
from autotuner.results import StudyResult

from .factory import sample_study
from .golden import FIXTURE

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def real_run(tmp_path: Path) -> Path:
    """The fixture as a run folder: results.json with its trials' folders and engine logs next to it."""
    run = tmp_path / "smollm2-cpu" / "20261122-113954-f75d46"
    run.mkdir(parents=True)
    result = StudyResult.read(FIXTURE)
    for t in result.trials:
        assert t.engine_log is not None
        log = run / Path(t.engine_log).parent.name / Path(t.engine_log).name
        log.parent.mkdir()
        log.write_text("engine log\n")
        t.engine_log = str(log)
    result.write(run / "results.json")
    return run / "results.json"


def test_write_report_writes_every_file_next_to_results(tmp_path: Path) -> None:
    results = real_run(tmp_path)
    files = write_report(StudyResult.read(results), results.parent)
    names = sorted(p.relative_to(results.parent).as_posix() for p in files.all())
    assert names == [
        "charts/history.png",
        "charts/latency_throughput.png",
        "charts/objective.png",
        "charts/percentiles.png",
        "charts/timeline.png",
        "headline.mmd",
        "report.html",
        "report.md",
    ]
    markdown = files.markdown.read_text()
    for target in re.findall(r"\]\(([^)]+)\)", markdown):  # every link and image resolves inside the run folder
        assert (results.parent / target).exists(), target
    assert "[log](trial-001-edbe387961/trial-001.engine.log)" in markdown


def test_the_same_results_give_the_same_files(tmp_path: Path) -> None:
    results = real_run(tmp_path)
    first = write_report(StudyResult.read(results), tmp_path / "a", run_dir=results.parent)
    second = write_report(StudyResult.read(results), tmp_path / "b", run_dir=results.parent)
    for one, two in zip(first.all(), second.all(), strict=True):
        assert one.read_bytes() == two.read_bytes(), one.name


def test_html_is_self_contained(tmp_path: Path) -> None:
    files = write_report(sample_study(), tmp_path)
    html = files.html.read_text()
    assert not EXTERNAL.search(html)
    assert "<link" not in html and "@import" not in html
    assert html.count('src="data:image/png;base64,') == 5
    assert (
        "smollm2-cpu: best n-parallel=4,threads=2: output_throughput 126.3 tokens/s, +84.4% vs baseline config" in html
    )
    assert "n-parallel=8,threads=2" in html and "oom" in html  # every trial, failures included


def test_html_escapes_what_the_results_say(tmp_path: Path) -> None:
    result = sample_study()
    result.trials[4].reason = "oom: <script>alert(1)</script>"
    html = write_report(result, tmp_path).html.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_kubernetes_run_shows_the_inferenceservice_it_applied(tmp_path: Path) -> None:
    result = sample_study()
    best = result.best()
    assert best is not None
    log = tmp_path / "trial-001-c000000001" / "trial-001.engine.log"
    log.parent.mkdir()
    log.write_text("")
    (log.parent / "trial-001.inferenceservice.yaml").write_text("apiVersion: ome.io/v1beta1\nkind: InferenceService\n")
    best.engine_log = str(log)
    result.best_command = "kubectl apply -f <the trial's *.inferenceservice.yaml kept beside its engine log>"
    markdown = write_report(result, tmp_path).markdown.read_text()
    assert "```yaml\napiVersion: ome.io/v1beta1\nkind: InferenceService\n```" in markdown


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["report", *args], out=out)
    return code, out.getvalue()


def test_cli_report_rerenders_next_to_results(tmp_path: Path) -> None:
    results = real_run(tmp_path)
    code, output = run_cli(str(results))
    assert code == 0
    assert str(results.parent / "report.md") in output
    assert (results.parent / "report.html").exists() and (results.parent / "charts" / "objective.png").exists()


def test_cli_report_with_a_baseline_and_another_folder(tmp_path: Path) -> None:
    results = real_run(tmp_path)
    baseline = tmp_path / "baseline.json"
    shutil.copy(results, baseline)
    code, _ = run_cli(str(results), "--baseline", str(baseline), "--out", str(tmp_path / "out"))
    assert code == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Against the baseline" in markdown and (tmp_path / "out" / "charts" / "comparison.png").exists()
    assert f"results: `{results}`" in markdown  # named by its path: it is not beside this report


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read {path}: No such file or directory"),
        ("{not json", "{path}:1:2: not valid JSON"),
        ("[1, 2]", "{path}: not a results file"),
        ('{"schema_version": 99}', "{path}: results schema version 99, this tool reads"),
        ('{"schema_version": 1, "spec_name": "x"}', "{path}: not a valid results file ("),
    ],
)
def test_cli_report_refuses_bad_input_naming_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    code, output = run_cli(str(path))
    assert code == 2
    assert output.startswith("autotuner report: " + message.format(path=path)), output
    assert "Traceback" not in output


def test_cli_report_refuses_a_bad_baseline(tmp_path: Path) -> None:
    results = real_run(tmp_path)
    code, output = run_cli(str(results), "--baseline", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in output


def test_results_fixture_is_a_real_run() -> None:
    data = json.loads(FIXTURE.read_text())
    assert data["environment"]["engine"].startswith("llamacpp (xllamacpp")
    assert all(level["samples"]["ttft"] for t in data["trials"] for level in t["levels"])
