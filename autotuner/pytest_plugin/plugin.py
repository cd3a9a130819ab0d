"""The hooks that need the run's state, as methods of one object registered only when ``--tune`` is given."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ..spec.loader import SPEC_SUFFIXES
from .items import SpecFile, TuningItem
from .reporting import DATA_ATTR, record_report, terminal_summary, write_benchmark_json
from .state import TuneState


class TunePlugin:
    def __init__(self, state: TuneState) -> None:
        self.state = state

    def _is_spec(self, file_path: Path, parent: pytest.Collector) -> bool:
        """A YAML file given as an argument, under a spec folder, or shaped like a spec (top-level name+engine).

        The shape test keeps other YAML files (CI workflows, fixtures) out when a broad path is given, while
        a spec with a typo anywhere still reaches validation and gets its located errors.
        """
        if file_path.suffix not in SPEC_SUFFIXES:
            return False
        if parent.session.isinitpath(file_path):
            return True
        if any(file_path.is_relative_to(folder) for folder in self.state.settings.specs):
            return True
        try:
            head = file_path.read_text(encoding="utf-8", errors="replace")[:20000]
        except OSError:
            return False
        keys = {line.split(":", 1)[0].strip() for line in head.splitlines() if line[:1].isalpha() and ":" in line}
        return {"name", "engine"} <= keys

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> SpecFile | None:
        if not self._is_spec(file_path, parent):
            return None
        return SpecFile.from_parent(parent, path=file_path)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Remember which tuning tests survived ``-k``/``--lf``: a verdict measures only its selected configs."""
        for item in session.items:
            if isinstance(item, TuningItem):
                self.state.selected.setdefault(item.run.name, []).append(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        if isinstance(item, TuningItem):
            setattr(report, DATA_ATTR, dict(item.report_data))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Runs where reports arrive (the xdist controller too): gather what tuning tests measured."""
        if hasattr(report, DATA_ATTR):
            record_report(self.state, report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Finish what the verdicts did not (-x, a failure, Ctrl-C): results written, nothing left running."""
        for run in reversed(list(self.state.runs.values())):
            result = run.finish_at_exit()
            if result is not None:
                self.state.finished.setdefault(run.name, result)
        self.state.remember_configs(session.config)
        if not self.state.worker:
            write_benchmark_json(session.config, self.state)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.state.worker:
            terminal_summary(terminalreporter, self.state)

    def pytest_unconfigure(self) -> None:
        for run in self.state.runs.values():
            run.close()
