"""The plugin's state for one pytest run, kept in ``config.stash`` (never in module globals).

It holds the checked settings, one ``SpecRun`` per collected spec, which tests survived deselection (``-k``,
``--lf``), and, in the process that prints the summary (the xdist controller, or the only process), what each
tuning test reported.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..results import StudyResult
from ..spec import SpecError
from ..validation import LoadedSpec, load_spec
from .lastfailed import CACHE_KEY, carry_over
from .options import TuneSettings
from .runs import SpecRun, with_launcher
from .workers import is_worker

LOG = logging.getLogger("autotuner.pytest")


@dataclass
class ItemOutcome:
    """What one tuning test reported: its final pytest outcome and the data it attached (see ``items``)."""

    nodeid: str
    outcome: str = "passed"  # passed, xfailed, failed, error, skipped
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuneState:
    settings: TuneSettings
    cache_dir: Path | None  # pytest's cache folder for this plugin (None with -p no:cacheprovider)
    resume_cached: bool  # --lf / --sw: continue the previous run's study from the cache journal
    invocation_dir: Path
    worker: bool = False
    runs: dict[Path, SpecRun] = field(default_factory=dict)
    names: dict[str, Path] = field(default_factory=dict)  # spec name -> file: names are unique across files
    selected: dict[str, list[pytest.Item]] = field(default_factory=dict)  # spec name -> its selected tests
    finished: dict[str, StudyResult] = field(default_factory=dict)  # studies finished in this process
    outcomes: dict[str, ItemOutcome] = field(default_factory=dict)  # nodeid -> outcome (reporting process)
    previous_configs: dict[str, str] = field(default_factory=dict)  # nodeid -> config hash, from the last run

    @classmethod
    def create(cls, config: pytest.Config, settings: TuneSettings) -> TuneState:
        cache = getattr(config, "cache", None)
        cache_dir = cache.mkdir("autotuner") if cache is not None else None
        resume = bool(config.getoption("lf", False)) or bool(config.getoption("stepwise", False))
        state = cls(settings, cache_dir, resume, config.invocation_params.dir, worker=is_worker(config))
        if cache is not None:
            previous = cache.get(CACHE_KEY, {})
            if isinstance(previous, dict):
                state.previous_configs = {str(k): str(v) for k, v in previous.items()}
        return state

    def remember_configs(self, config: pytest.Config) -> None:
        """Which config each test measured, for the next ``--lf`` (a ``trial-k`` test has none until it runs)."""
        cache = getattr(config, "cache", None)
        if cache is None or self.worker:
            return
        mapping = dict(self.previous_configs)
        for items in self.selected.values():
            for item in items:
                record = getattr(item, "record", None)
                if record is not None:
                    mapping[item.nodeid] = record.config_hash
        cache.set(CACHE_KEY, mapping)

    def load(self, path: Path) -> LoadedSpec:
        """Load and check a spec (relative path in messages, as users typed it); raise ``SpecError``."""
        shown = os.path.relpath(path, self.invocation_dir)
        loaded = with_launcher(load_spec(shown if not shown.startswith("..") else path), self.settings.launcher)
        other = self.names.setdefault(loaded.spec.name, path)
        if other != path:
            message = f"spec name {loaded.spec.name!r} is already used by {other}"
            raise SpecError([loaded.source.problem(("name",), message)])
        return loaded

    def run_for(self, path: Path, loaded: LoadedSpec) -> SpecRun:
        run = self.runs.get(path)
        if run is None:
            run = self.runs[path] = self._new_run(loaded)
        return run

    def _new_run(self, loaded: LoadedSpec) -> SpecRun:
        """The spec's study: in ``--tune-storage``, else in a cache journal (see ``runs``), else in memory."""
        if self.settings.storage is not None:
            return SpecRun(loaded, self.settings, self.settings.storage, resume=True)
        if self.cache_dir is None or self.worker:
            return SpecRun(loaded, self.settings, None, resume=False)
        journal = self.cache_dir / f"{loaded.spec.name}-{loaded.digest[:8]}.journal"
        run = SpecRun(loaded, self.settings, f"journal:{journal}", resume=True)

        def start_afresh() -> None:
            journal.unlink(missing_ok=True)

        def keep_what_passed() -> None:
            previous = journal.with_name(journal.name + ".previous")
            if journal.exists():
                journal.replace(previous)
            kept = carry_over(previous, journal, self.rerun_configs(run))
            LOG.info("%s: --lf keeps %d configs measured by the previous run", run.name, kept)

        run.prepare = keep_what_passed if self.resume_cached else start_afresh
        return run

    def rerun_configs(self, run: SpecRun) -> set[str]:
        """Hashes of the configs whose tests run now: measured anew under ``--lf``."""
        hashes: set[str] = set()
        for item in self.selected.get(run.name, []):
            candidate = getattr(item, "candidate", None)
            if candidate is not None:
                hashes.add(candidate.hash)
            elif item.nodeid in self.previous_configs:
                hashes.add(self.previous_configs[item.nodeid])
        return hashes


STATE_KEY = pytest.StashKey[TuneState]()


def state_of(config: pytest.Config) -> TuneState | None:
    return config.stash.get(STATE_KEY, None)
