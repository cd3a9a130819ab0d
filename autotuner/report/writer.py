"""``write_report``: the report files of one run, next to its ``results.json`` (the only I/O of this package).

Reads what the pure layer cannot (the best trial's InferenceService manifest, kept beside its engine log), builds
the report data once, and writes every rendering of it. Re-running it on the same results rewrites the same
bytes, so ``autotuner report`` can re-render an old run without re-measuring anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import staged
from ..results import StudyResult
from .charts import all_charts
from .comparison import BaselineComparison
from .data import ReportData, build_report
from .html import render_html
from .markdown import render_markdown
from .mermaid import headline_chart

CHARTS_DIR = "charts"


@dataclass(frozen=True)
class ReportFiles:
    """What was written (paths), and the data it was drawn from (for callers that post or summarise it)."""

    markdown: Path
    html: Path
    mermaid: Path | None
    charts: dict[str, Path] = field(default_factory=dict)
    data: ReportData | None = None

    def all(self) -> list[Path]:
        extra = [self.mermaid] if self.mermaid is not None else []
        return [self.markdown, self.html, *extra, *self.charts.values()]


def write_report(
    result: StudyResult,
    out_dir: Path,
    baseline: StudyResult | None = None,
    *,
    comparison: BaselineComparison | None = None,
    run_dir: Path | None = None,
    results_name: str = "results.json",
) -> ReportFiles:
    """Write ``report.md``, ``report.html``, ``headline.mmd`` and ``charts/*.png`` into ``out_dir``.

    ``run_dir`` is where the trials' folders are (default ``out_dir``): log links are made relative to it when the
    report sits beside them; ``results_name`` is how the report names its results file. ``comparison`` (from
    compare.py, later) takes precedence over ``baseline``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(os.path.realpath(run_dir if run_dir is not None else out_dir))
    data = build_report(
        _with_real_log_paths(result),
        baseline=baseline,
        comparison=comparison,
        run_dir=folder if folder == Path(os.path.realpath(out_dir)) else None,
        manifest=_manifest(result),
    )
    images = all_charts(data)
    charts_dir = out_dir / CHARTS_DIR
    written = {name: charts_dir / f"{name}.png" for name in images}
    markdown = out_dir / "report.md"
    links = {name: f"{CHARTS_DIR}/{path.name}" for name, path in written.items()}
    html = out_dir / "report.html"
    chart = headline_chart(data)
    mermaid = out_dir / "headline.mmd" if chart else None
    # Staged and renamed together: a full disk or an interrupt leaves the whole report or none of it.
    with staged() as files:
        for name, png in images.items():
            files.write(written[name], png)
        files.write(markdown, render_markdown(data, links, results_name=results_name, html_name="report.html"))
        files.write(html, render_html(data, images, results_name=results_name))
        if mermaid is not None:
            files.write(mermaid, chart + "\n")
    return ReportFiles(markdown, html, mermaid, written, data)


def _with_real_log_paths(result: StudyResult) -> StudyResult:
    """Engine log paths as real absolute paths when the logs are here (a run under ``--report-dir reports``
    records them relative to the working directory; ``latest`` is a symlink), so links can be made relative."""
    trials = []
    for trial in result.trials:
        log = trial.engine_log
        if log is not None and Path(log).exists():
            trial = trial.model_copy(update={"engine_log": os.path.realpath(log)})
        trials.append(trial)
    return result.model_copy(update={"trials": trials})


def _manifest(result: StudyResult) -> str | None:
    """The best trial's InferenceService (kubernetes runs keep ``trial-NNN.inferenceservice.yaml`` by its log)."""
    best = result.best()
    if best is None or best.engine_log is None or not (result.best_command or "").startswith("kubectl "):
        return None
    log = Path(best.engine_log)
    candidate = log.with_name(log.name.replace(".engine.log", ".inferenceservice.yaml"))
    try:
        return candidate.read_text(encoding="utf-8")
    except OSError:
        return None
