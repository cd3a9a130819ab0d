"""``autotuner tune``: a whole study for one spec, from launching engines to ``results.json``.

Wires the pieces together and owns the resources a study shares: one launcher (which first reaps what killed
runs left), one genai-bench worker (imports paid once per study), one tokenizer folder, the run folder
``<report-dir>/<spec>/runs/<run-id>/`` with every trial's engine log and genai-bench files, and
``<report-dir>/<spec>/results.json``, rewritten after every trial so an interrupted study loses nothing measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .bench.driver import ProgressEvent, run_workload
from .bench.measurement import LevelKey, LevelResult
from .bench.runner import GenaiBench
from .bench.tokenizer import resolve_tokenizer
from .launch import launcher_for
from .launch.base import LaunchRequest
from .launch.signals import graceful_termination
from .results import StudyResult
from .spec import Workload
from .study import Study, StudyOptions, new_run_id
from .trial import TrialContext
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
    ) -> dict[LevelKey, LevelResult]:
        def show(event: ProgressEvent) -> None:
            progress(str(event))

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
    max_trials: int | None = None
    timeout: float | None = None


def results_path(loaded: LoadedSpec, report_dir: Path) -> Path:
    return report_dir / loaded.spec.name / "results.json"


def tune(loaded: LoadedSpec, options: TuneOptions, progress: Callable[[str], None]) -> StudyResult:
    spec = loaded.spec
    run_id = new_run_id()
    out_dir = options.report_dir / spec.name / "runs" / run_id
    launcher = launcher_for(spec.engine.launcher, spec.engine.kubernetes)
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
        )
        study = Study(
            loaded,
            context,
            StudyOptions(
                storage=options.storage,
                max_trials=options.max_trials,
                timeout=options.timeout,
                results_path=results_path(loaded, options.report_dir),
            ),
            progress=progress,
        )
        progress(f"{spec.name}: strategy {study.strategy}, run {run_id}, logs under {out_dir}")
        return study.run()
