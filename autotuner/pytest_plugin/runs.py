"""One tuning session per spec inside a pytest process: opened by the spec's first test, finished by its verdict.

Why lazily: a spec whose tests are all deselected (``-k``, ``--lf``) must launch nothing, and a session that is
opened holds real resources (a genai-bench worker, a warm engine). Why finished at the end in any case: ``-x``,
a failure or Ctrl-C can stop pytest before a verdict runs, and what was measured must still be written and
every engine stopped; ``pytest_sessionfinish`` closes whatever is still open.

Storage: with ``--tune-storage`` the study lives there and a run continues (or, as an xdist worker, joins) it.
Without it, a single-process run keeps its study in a journal file in pytest's cache, started afresh each run
and resumed by ``--lf``/``--sw``, so that configs which passed last time are not measured again and the verdict
still judges them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..ab import run_ab
from ..baseline import read_baseline
from ..launch.base import InfrastructureError
from ..results import StudyResult, TrialRecord
from ..space import Config
from ..storage import silence_expected_warnings
from ..study import RECORD_ATTR
from ..tune import TuneOptions, TuneSession, tune_session
from ..validation import LoadedSpec
from .options import TuneSettings

LOG = logging.getLogger("autotuner.pytest")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The warnings our deliberate use of Optuna raises (``storage.EXPECTED_WARNINGS``) are about our storage code,
    not the user's tests: not in their summary. Installed again here because pytest resets the warning filters
    around each test; any other warning still reaches the summary."""
    with warnings.catch_warnings():
        silence_expected_warnings()
        yield


class SpecRunClosed(RuntimeError):
    """A test of a spec ran after the spec's verdict finished its study (tests were reordered)."""


@dataclass
class SpecRun:
    """The study of one spec in this process, and which of its configs this process has tried."""

    loaded: LoadedSpec
    settings: TuneSettings
    storage: str | None
    resume: bool
    prepare: Callable[[], None] | None = None  # run once before opening: start or carry over the cache journal
    attempted: set[str] = field(default_factory=set)  # config hashes whose test ran here
    sampled_here: int = 0  # measure_next() calls made here
    result: StudyResult | None = None
    results_path: Path | None = None
    _stack: contextlib.ExitStack | None = None
    _session: TuneSession | None = None
    _failure: BaseException | None = None
    _closed: bool = False

    @property
    def name(self) -> str:
        return self.loaded.spec.name

    @property
    def opened(self) -> bool:
        return self._session is not None

    def session(self) -> TuneSession:
        """The open session, opening it on first use. An infrastructure failure is remembered: the spec's other
        tests report it at once instead of retrying what cannot work (no daemon, no cluster)."""
        if self._closed:
            raise SpecRunClosed(f"{self.name}: the verdict already finished this spec's study")
        if self._failure is not None:
            raise InfrastructureError(f"{self.name}: the tuning session could not be opened: {self._failure}")
        if self._session is None:
            if self.prepare is not None:
                prepare, self.prepare = self.prepare, None
                prepare()
            options = TuneOptions(
                report_dir=self.settings.report_dir,
                storage=self.storage,
                resume=self.resume,
                heartbeat=self.settings.heartbeat,
                max_trials=self.settings.max_trials,
                timeout=self.settings.timeout,
                launcher=self.settings.launcher,
            )
            stack = contextlib.ExitStack()
            try:
                session = stack.enter_context(tune_session(self.loaded, options, self._progress))
                with _quiet():
                    session.study.start()
            except InfrastructureError as exc:
                stack.close()
                self._failure = exc
                raise
            except BaseException:
                stack.close()
                raise
            self._stack, self._session = stack, session
            self.results_path = session.out_dir / "results.json"
        return self._session

    def _progress(self, text: str) -> None:
        LOG.info("%s", text)

    def time_left(self) -> bool:
        return time.monotonic() <= self.session().study.deadline

    def measure(self, config: Config) -> TrialRecord:
        """The config's record: measured now, or the one this study holds (from here, a peer, or --lf's run)."""
        self.attempted.add(config.hash)
        with _quiet():
            record = self.session().study.measure(config)
        assert record is not None  # measure() waits for a peer's record unless told not to
        return record

    def measure_next(self) -> TrialRecord | None:
        self.sampled_here += 1
        with _quiet():
            return self.session().study.measure_next()

    def race(self) -> None:
        """Measure the best and its tie-set again until separated or racing's budget is spent (``Study.race``)."""
        with _quiet():
            self.session().study.race()

    def measured_count(self) -> int:
        """Configs with a record in the study (every worker's): how far a shared sampled study has come."""
        study = self.session().study
        return sum(1 for t in study.optuna.get_trials(deepcopy=False) if RECORD_ATTR in t.user_attrs)

    def finish(self) -> StudyResult:
        """Choose the best from everything the study holds, write results.json, and release the resources."""
        if self.result is not None:
            return self.result
        session = self.session()
        try:
            with _quiet():
                self._run_ab(session)
                self.result = session.finish()  # writes results.json and the report, with the comparison
        finally:
            self.close()
        return self.result

    def baseline_file(self) -> Path | None:
        """``--tune-baseline``: a results file, or a folder holding ``<spec>/baseline.json`` (None: none for us)."""
        given = self.settings.baseline
        if given is None:
            return None
        path = given / self.name / "baseline.json" if given.is_dir() else given
        return path if path.is_file() else None

    def _run_ab(self, session: TuneSession) -> None:
        """``--tune-baseline``: the A/B against main's best, as ``autotuner tune --baseline`` does (ab.py).

        A baseline from other hardware or another engine raises ``BaselineMismatch`` (the verdict errors with the
        differences); the comparison lands in ``results.json`` and the report, and the verdict fails on it."""
        path = self.baseline_file()
        if path is None:
            return
        baseline = read_baseline(path, self.name)
        session.study.result.comparison = run_ab(session, baseline, source=str(path))

    def close(self) -> None:
        """Stop what the session started (engine, genai-bench worker). Idempotent; never measures anything."""
        self._closed = True
        stack, self._stack, self._session = self._stack, None, None
        if stack is not None:
            stack.close()

    def finish_at_exit(self) -> StudyResult | None:
        """pytest is ending and the verdict did not run: keep what was measured (results.json), stop everything."""
        if self._session is None:
            self._closed = True
            return self.result
        try:
            return self.finish()
        except Exception as exc:  # noqa: BLE001 - at exit, a failure to write must not hide the tests' outcome
            LOG.warning("%s: could not finish the study at exit: %s", self.name, exc)
            self.close()
            return None


def with_launcher(loaded: LoadedSpec, launcher: str | None) -> LoadedSpec:
    """The spec as if its ``engine.launcher`` were ``launcher``, checked again (an endpoint needs a url...)."""
    if launcher is None or launcher == loaded.spec.engine.launcher:
        return loaded
    from ..spec import SpecError
    from ..validation import check_spec

    engine = loaded.spec.engine.model_copy(update={"launcher": launcher})
    spec = loaded.spec.model_copy(update={"engine": engine})
    space, problems = check_spec(loaded.source, spec)
    if problems:
        raise SpecError(
            [dataclasses.replace(p, message=f"{p.message} (with --tune-launcher {launcher})") for p in problems]
        )
    return dataclasses.replace(loaded, spec=spec, space=space)
