"""``autotuner tune``: a whole study for one spec, from launching engines to ``results.json``.

Wires the pieces together and owns the resources a study shares: one launcher (which first reaps what killed
runs left), one genai-bench worker (imports paid once per study), one tokenizer folder, the run folder
``<report-dir>/<spec>/<run-id>/`` with ``results.json`` (rewritten after every trial, so an interrupted study
loses nothing measured) and every trial's engine log and genai-bench files; ``<report-dir>/<spec>/latest`` links
to the newest run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .ab import check_environment, run_ab
from .atomic import is_disk_full
from .baseline import read_baseline
from .bench.driver import ProgressEvent, run_workload
from .bench.measurement import LevelKey, LevelResult, Measurement
from .bench.runner import GenaiBench
from .bench.tokenizer import resolve_tokenizer
from .fingerprint import environment
from .launch import launcher_for
from .launch.base import LaunchRequest
from .launch.command import command_line
from .launch.plan import launch_request
from .launch.signals import graceful_termination
from .results import StudyResult
from .space import Config
from .spec import Workload
from .study import Study, StudyOptions, new_run_id
from .trial import StageSink, TrialContext
from .validation import LoadedSpec


@dataclass
class GenaiBenchBench:
    """The trial pipeline's ``Bench``: genai-bench through one worker shared by every trial of the study."""

    tokenizer: str
    runner: GenaiBench

    def __call__(
        self,
        *,
        url: str,
        request: LaunchRequest,
        workload: Workload,
        out_dir: Path,
        on_level: Callable[[LevelKey, LevelResult], str | None],
        progress: Callable[[str], None],
        on_stage: StageSink,
    ) -> dict[LevelKey, LevelResult]:
        def show(event: ProgressEvent) -> None:
            progress(str(event))
            if event.seconds is None:
                return
            if event.stage == "warmup":
                on_stage("warmup", event.seconds, True, event.message)
            elif event.stage == "level-done" and event.key is not None:
                ok = isinstance(event.result, Measurement)
                on_stage(f"level {event.key}", event.seconds, ok, event.message)

        return run_workload(
            url,
            request.profile,
            request.served_name,
            self.tokenizer,
            workload,
            out_dir,
            on_level=on_level,
            progress=show,
            bench=self.runner,
        )


def tokenizer_for(loaded: LoadedSpec) -> str:
    """The spec's tokenizer, else one derived from its model (a GGUF -> an offline HF tokenizer folder)."""
    model = loaded.spec.model
    reference = model.id
    if model.kind == "path" and not Path(reference).is_absolute():
        reference = str((loaded.path.parent / reference).resolve())
    return resolve_tokenizer(reference, model.tokenizer)


@dataclass
class TuneOptions:
    report_dir: Path = Path("reports")
    storage: str | None = None
    resume: bool = False  # continue (or join as another worker) a study that has trials in the storage
    heartbeat: int = 30  # seconds between trial heartbeats on RDB storages
    max_trials: int | None = None
    timeout: float | None = None
    launcher: str | None = None  # overrides spec.engine.launcher (process, docker, kubernetes, endpoint)
    baseline: Path | None = None  # main's baseline.json (or a folder with <spec>/baseline.json): regression check
    allow_mismatch: bool = False  # compare with a baseline from other hardware or another engine (with warnings)
    ab_rounds: int | None = None  # interleaved A/B rounds (default: ab.rounds_for)


def latest_results(report_dir: Path, spec_name: str) -> Path:
    """``<report-dir>/<spec>/latest/results.json``: the newest run's results (``latest`` links to its folder)."""
    return report_dir / spec_name / "latest" / "results.json"


@dataclass
class TuneSession:
    """One study's run with its resources open: measure through ``study``, then ``finish()``.

    ``tune()`` measures the whole plan; the pytest plugin measures one config per test item and finishes at the
    spec's verdict item. Either way ``finish()`` writes the same ``results.json`` (and report).
    """

    loaded: LoadedSpec
    study: Study
    out_dir: Path
    run_id: str

    def finish(self) -> StudyResult:
        """The best chosen from everything the storage holds, its launch command, ``results.json`` written."""
        result = self.study.finish()
        if result.comparison is not None:
            from .ab import after_finish

            after_finish(result.comparison, result)
        best = result.best()
        if best is not None:
            spec = self.loaded.spec
            request = launch_request(
                self.loaded, Config.of(best.config), run_id=self.run_id, name="best", log_dir=self.out_dir
            )
            result.best_command = command_line(request, spec.engine.launcher)
        result.write(self.out_dir / "results.json")
        try:  # the report: a problem drawing it is a warning, never a lost results.json (written above)
            from .report import write_report

            comparison = None
            if result.comparison is not None:
                from .ab import report_comparison

                comparison = report_comparison(result.comparison, result)
            write_report(result, self.out_dir, comparison=comparison)
        except Exception as exc:  # noqa: BLE001 - the measurements are safe; say what failed and go on
            if is_disk_full(exc):  # not a drawing problem: the run's folder is full (cli.py: exit 5, names it)
                raise
            print(f"autotuner: warning: no report for {self.out_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return result


@contextmanager
def tune_session(loaded: LoadedSpec, options: TuneOptions, progress: Callable[[str], None]) -> Iterator[TuneSession]:
    """Open what a study shares (run folder, launcher, genai-bench worker, tokenizer) and close it whatever happens.

    On exit (normal, an exception, SIGTERM/SIGINT through ``graceful_termination``) the warm engine and the
    genai-bench worker are stopped; what was measured is in ``results.json`` already (rewritten per trial).
    """
    spec = loaded.spec
    run_id = new_run_id()
    out_dir = options.report_dir / spec.name / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    _point_latest(out_dir)
    launcher = launcher_for(options.launcher or spec.engine.launcher, spec.engine.kubernetes)
    for stopped in launcher.reap():
        progress(f"stopped an engine left by an earlier run: {stopped}")
    tokenizer = tokenizer_for(loaded)
    with graceful_termination(), GenaiBench() as runner:
        context = TrialContext(
            loaded=loaded,
            run_id=run_id,
            out_dir=out_dir,
            launcher=launcher,
            bench=GenaiBenchBench(tokenizer, runner),
            progress=progress,
            reuse_engines=any(name.startswith("request.") for name in spec.parameters),
        )
        study = Study(
            loaded,
            context,
            StudyOptions(
                storage=options.storage,
                resume=options.resume,
                heartbeat=options.heartbeat,
                max_trials=options.max_trials,
                timeout=options.timeout,
                results_path=out_dir / "results.json",
            ),
            progress=progress,
        )
        study.result.environment = environment(spec)
        progress(f"{spec.name}: strategy {study.strategy}, run {run_id}, results and logs in {out_dir}")
        try:
            yield TuneSession(loaded=loaded, study=study, out_dir=out_dir, run_id=run_id)
        finally:
            context.release()


def tune(loaded: LoadedSpec, options: TuneOptions, progress: Callable[[str], None]) -> StudyResult:
    """The whole study for one spec: baseline, plan or sampler until the budget, best named, results written.

    With ``options.baseline`` (main's result): a baseline from other hardware or another engine is refused before
    anything is measured (unless ``allow_mismatch``); after the search, the A/B against it (ab.py) gives
    ``result.comparison``."""
    baseline = read_baseline(options.baseline, loaded.spec.name) if options.baseline is not None else None
    with tune_session(loaded, options, progress) as session:
        if baseline is not None:  # refused before anything is measured
            check_environment(baseline, session.study.result.environment, allow_mismatch=options.allow_mismatch)
        session.study.run()
        if baseline is not None:
            session.study.result.comparison = run_ab(
                session,
                baseline,
                rounds=options.ab_rounds,
                allow_mismatch=options.allow_mismatch,
                source=str(options.baseline),
                progress=progress,
            )
        return session.finish()


def _point_latest(run_dir: Path) -> None:
    """Move the ``latest`` link to this run (atomically: a reader never sees it missing)."""
    link = run_dir.parent / "latest"
    temporary = run_dir.parent / f".latest-{run_dir.name}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_dir.name, target_is_directory=True)
    temporary.replace(link)
