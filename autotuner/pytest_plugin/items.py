"""Spec files as pytest collectors, and the three kinds of tuning tests they hold.

- ``<spec>[<config id>]`` (grid strategies) and ``<spec>[baseline]``: one config each. The measurement happens in
  the test's *setup* and the SLO judgement in its *call*: an infrastructure error while measuring is then an
  error (red, "E"), an SLO miss an xfail, as users of pytest read them.
- ``<spec>[trial-k]`` (sampled strategies): the k-th config the sampler proposes.
- ``<spec>[verdict]``: races the best against its tie-set (repeats, as ``autotuner tune`` does), finishes the
  study (best chosen, results.json written) and fails when no config met the SLOs, saying why with numbers.

A deselected test measures nothing: only the tests that run call the study. Keywords make configs selectable
with ``-k`` although ``=`` and ``,`` cannot appear in a ``-k`` expression: every config test also matches
``name:value`` for each of its values (``-k "n-parallel:2 and threads:1"``), its config hash, and ``baseline``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr

from ..compare import format_comparison
from ..launch.base import InfrastructureError
from ..results import StudyResult, TrialRecord
from ..space import Config, format_value
from ..spec import SpecError
from ..storage import StorageError
from ..study import StudyExists, exploration_budget, planned_configs
from . import judge
from .lastfailed import child_nodeid
from .runs import SpecRun, SpecRunClosed
from .state import TuneState, state_of
from .workers import is_worker

MAX_SAMPLED_ITEMS = 100  # trial-k tests of a sampled spec bounded only by a time budget
EXPECTED_ERRORS = (InfrastructureError, StorageError, StudyExists, SpecRunClosed)


def _state(config: pytest.Config) -> TuneState:
    state = state_of(config)
    assert state is not None, "the autotuner plugin is not configured"
    return state


class SpecFile(pytest.File):
    """A tuning spec (YAML): invalid specs become collection errors listing every ``file:line:col`` problem."""

    def collect(self) -> Iterator[pytest.Item]:
        state = _state(self.config)
        loaded = state.load(self.path)
        run = state.run_for(self.path, loaded)
        spec = loaded.spec
        baseline = Config.of(spec.search.baseline) if spec.search.baseline is not None else None
        plan = planned_configs(loaded, state.settings.max_trials)
        if plan is not None:
            for config in plan:
                is_baseline = baseline is not None and config.hash == baseline.hash
                label = "baseline" if is_baseline else config.id
                yield ConfigItem.from_parent(
                    self, name=f"{spec.name}[{label}]", run=run, candidate=config, baseline=is_baseline
                )
        else:
            if baseline is not None:
                yield ConfigItem.from_parent(
                    self, name=f"{spec.name}[baseline]", run=run, candidate=baseline, baseline=True
                )
            for index in range(1, sampled_items(run, baseline is not None) + 1):
                yield TrialItem.from_parent(self, name=f"{spec.name}[trial-{index}]", run=run, index=index)
        yield VerdictItem.from_parent(self, name=f"{spec.name}[verdict]", run=run)

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, SpecError):
            problems = excinfo.value.problems
            return "\n".join(str(p) for p in problems) + f"\n{len(problems)} problem(s) in this tuning spec"
        return super().repr_failure(excinfo)


def sampled_items(run: SpecRun, has_baseline: bool) -> int:
    """How many ``trial-k`` tests a sampled spec gets: the configs its budget explores (the baseline counts;
    racing's share of the budget is for repeats, which the verdict runs), else its finite space."""
    explore = exploration_budget(run.loaded, run.settings.max_trials or run.loaded.spec.search.max_trials)
    if explore is not None:
        return max(explore - (1 if has_baseline else 0), 0)
    count = run.loaded.space.count()
    if count is not None and count.feasible is not None:
        return count.feasible
    return MAX_SAMPLED_ITEMS


class TuningItem(pytest.Item):
    """What the three kinds share: their spec's run, reporting data, and errors shown without tracebacks."""

    def __init__(self, *, run: SpecRun, **kwargs: Any) -> None:
        # An explicit string id, so that ``--lf`` recognizes the test in pytest >= 9.2 (see ``child_nodeid``).
        kwargs.setdefault("nodeid", child_nodeid(kwargs["parent"].nodeid, kwargs["name"]))
        super().__init__(**kwargs)
        self.run = run
        self.report_data: dict[str, Any] = {"spec": run.name, "kind": self.kind}
        self.extra_keyword_matches.update({"tune", run.name, self.kind})

    kind = "tuning"

    @property
    def strict(self) -> bool:
        return self.run.settings.strict

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name

    def setup(self) -> None:
        """Measure here: pytest reports a failure in setup as an error, which an infrastructure problem is. It is
        shown as its message (the traceback of a missing Docker daemon helps nobody)."""
        try:
            self.measure()
            return
        except EXPECTED_ERRORS as exc:
            message = f"{type(exc).__name__}: {exc}"
        pytest.fail(message, pytrace=False)  # outside the except block: no "during handling" chain

    def measure(self) -> None:
        """Get this test's record (or skip); subclasses say how."""

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, EXPECTED_ERRORS):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def _show(self, record: TrialRecord) -> None:
        """junit properties and the data the summary and the benchmark export read."""
        self.user_properties.extend(judge.record_properties(record))
        self.report_data.update(record_data(record, self.run))

    def _judge(self, record: TrialRecord) -> None:
        verdict = judge.judge_record(record, strict=self.strict)
        if verdict.outcome == "xfailed":
            pytest.xfail(verdict.message)
        if verdict.outcome == "failed":
            pytest.fail(verdict.message, pytrace=False)
        if verdict.outcome == "skipped":
            pytest.skip(verdict.message)


class ConfigItem(TuningItem):
    kind = "config"

    def __init__(self, *, candidate: Config, baseline: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.candidate = candidate  # not ``config``: that is pytest's Config on every node
        self.baseline = baseline
        self.record: TrialRecord | None = None
        self.extra_keyword_matches.add(candidate.hash)
        self.extra_keyword_matches.update(f"{name}:{format_value(value)}" for name, value in candidate.values)
        if baseline:
            self.extra_keyword_matches.add("baseline")

    def measure(self) -> None:
        self.run.attempted.add(self.candidate.hash)
        self.run.session()
        if not self.run.time_left():
            pytest.skip(f"{self.candidate.id}: not measured: the time budget of the study ran out before it")
        self.record = self.run.measure(self.candidate)
        self._show(self.record)

    def runtest(self) -> None:
        assert self.record is not None
        self._judge(self.record)


class TrialItem(TuningItem):
    kind = "trial"

    def __init__(self, *, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.record: TrialRecord | None = None
        self.extra_keyword_matches.add(f"trial-{index}")

    def measure(self) -> None:
        self.run.session()
        self.record = self.run.measure_next()
        if self.record is None:
            notes = [n for n in self.run.session().study.result.notes if "timeout" in n or "complete" in n]
            why = notes[-1] if notes else "the study's budget is used up"
            pytest.skip(f"trial {self.index}: nothing left to measure: {why}")
        self._show(self.record)

    def runtest(self) -> None:
        assert self.record is not None
        self._judge(self.record)


class VerdictItem(TuningItem):
    kind = "verdict"

    def measure(self) -> None:
        state = _state(self.config)
        peers = [i for i in state.selected.get(self.run.name, []) if i is not self]
        if not peers and not self.run.opened and not (self.run.settings.storage or state.resume_cached):
            pytest.skip(f"{self.run.name}: no config of this spec was selected, so there is nothing to judge")
        self.run.session()
        self._complete(peers, worker=is_worker(self.config))

    def _complete(self, peers: list[pytest.Item], *, worker: bool) -> None:
        """Make sure every selected config of the spec is measured before judging.

        In one process the configs' tests ran before (collection order), so this measures nothing. Under xdist
        the other tests of the spec may still be queued or running on other workers: their configs are measured
        here unless a peer has them already (``Study.measure`` returns a peer's record, waiting for it while the
        peer measures), and a sampled study is taken up to the number of selected ``trial-k`` tests.
        """
        for item in peers:
            if isinstance(item, ConfigItem) and item.candidate.hash not in self.run.attempted:
                if not self.run.time_left():
                    break
                self.run.measure(item.candidate)
        if worker:
            target = sum(1 for i in peers if isinstance(i, (TrialItem, ConfigItem)))
            while self.run.measured_count() < target and self.run.time_left():
                if self.run.measure_next() is None:
                    break

    def runtest(self) -> None:
        self.run.race()
        result = self.run.finish()
        _state(self.config).finished[self.run.name] = result
        path = str(self.run.results_path) if self.run.results_path else None
        self.user_properties.extend(judge.verdict_properties(result, path))
        self.report_data.update(verdict_data(result, path))
        if self.run.settings.baseline is not None:
            baseline = self.run.baseline_file()
            self.user_properties.append(
                (f"{judge.PROPERTY_PREFIX}baseline_file", str(baseline or "none for this spec"))
            )
            if result.comparison is not None:
                self.user_properties.append((f"{judge.PROPERTY_PREFIX}regression", result.comparison.verdict))
        if not [t for t in result.trials if t.repeat == 0]:
            pytest.skip(f"{self.run.name}: no config was measured, so there is nothing to judge")
        if result.best() is None:
            pytest.fail(judge.no_feasible_message(result), pytrace=False)
        if result.comparison is not None and result.comparison.failed:  # the same verdict as `autotuner compare`
            pytest.fail(format_comparison(result.comparison), pytrace=False)


# ------------------------------------------------------------------------------------------- reporting data
def record_data(record: TrialRecord, run: SpecRun) -> dict[str, Any]:
    """What the summary and the benchmark export need from a config's test (JSON-safe: it crosses xdist)."""
    return {
        "config_id": record.config_id,
        "config_hash": record.config_hash,
        "config": dict(record.config),
        "baseline": record.baseline,
        "trial": record.number,
        "outcome": record.outcome,
        "reason": record.reason,
        "objective": str(run.loaded.spec.objective[0]),
        "objectives": [o.model_dump(mode="json") for o in record.objectives],
        "slo": judge.slo_status(record) if record.outcome == "feasible" else "",
    }


def verdict_data(result: StudyResult, results_path: str | None) -> dict[str, Any]:
    best = result.best()
    ranking = result.ranking
    return {
        "measurements": {e.config_hash: list(e.values) for e in ranking.estimates} if ranking is not None else {},
        "summary": judge.verdict_summary(result),
        "results": results_path,
        "counts": vars(judge.counts(result)),
        "objective": result.objectives[0] if result.objectives else "",
        "best": None
        if best is None
        else {
            "config_id": best.config_id,
            "config_hash": best.config_hash,
            "config": dict(best.config),
            "objectives": [o.model_dump(mode="json") for o in best.objectives],
            "slo": judge.slo_status(best),
        },
    }
