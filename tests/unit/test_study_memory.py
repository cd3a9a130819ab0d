"""A study keeps one ``TrialRecord`` per trial, however often it looks at them.

A long study (hundreds of trials, ``benchmarks/soak.py``) grew by tens of KiB per trial because every record was
held three times: in the results list, as JSON in the (in-memory) Optuna storage, and again in the study's cache
of records parsed back from that JSON (the census after each trial re-validated the trial just told). The study and its in-memory Optuna storage are real
here; only the measurement is replaced, through the ``Study.run_trial`` seam, by records of a realistic size.
"""

from __future__ import annotations

import gc
from pathlib import Path

from autotuner.results import LevelRecord, ObjectiveRecord, SampleSet, TrialRecord
from autotuner.space import Config
from autotuner.study import Study, StudyOptions
from autotuner.trial import TrialContext
from autotuner.validation import load_spec_text

from .specs import NoLaunch, mutate

GRID = mutate(
    "search: {strategy: auto, max_trials: 6, timeout: 20m, seed: 0, baseline: {n-parallel: 1, threads: 2}}",
    "search: {strategy: grid, seed: 0, baseline: {n-parallel: 1, threads: 2, n-batch: 256}, racing: false}",
    mutate('constraints: ["n-parallel * threads <= 8"]\n', ""),
)


def measured(
    _ctx: TrialContext, number: int, config: Config, *, baseline: bool = False, repeat: int = 0
) -> TrialRecord:
    """A record with a level of 200 per-request samples, like a short benchmark's."""
    samples = SampleSet(ttft=[0.1] * 200, tpot=[0.01] * 200, e2e_latency=[0.5] * 200, output_tokens=[64] * 200)
    level = LevelRecord(scenario="D(64,64)", concurrency=4, feasible=True, requests=200, samples=samples)
    return TrialRecord(
        number=number, config=config.as_dict(), config_id=config.id, config_hash=config.hash, baseline=baseline,
        outcome="feasible", objectives=[ObjectiveRecord(name="maximize output_throughput", value=100.0 + number)],
        levels=[level], repeat=repeat,
    )  # fmt: skip


def json_levels(levels: object) -> bool:
    """A record dumped to JSON has its levels as dicts (a TrialRecord's own ``__dict__`` has LevelRecords)."""
    return isinstance(levels, list) and bool(levels) and isinstance(levels[0], dict)


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if type(item) is kind)


def test_each_trial_record_is_held_once(tmp_path: Path) -> None:
    loaded = load_spec_text(str(tmp_path / "grid.yaml"), GRID, environ={})
    context = TrialContext(loaded=loaded, run_id="t", out_dir=tmp_path, launcher=NoLaunch(), bench=lambda **_: {})
    before = live(TrialRecord)
    study = Study(loaded, context, StudyOptions(results_path=tmp_path / "results.json"), run_trial=measured)
    result = study.run()
    trials = len(result.trials)
    assert trials == 48  # the whole grid, each config once
    assert live(TrialRecord) - before == trials  # one object per trial: the results list and the cache share it
    gc.collect()
    dumped = [d for d in gc.get_objects() if type(d) is dict and "config_hash" in d and json_levels(d.get("levels"))]
    assert dumped == []  # nor a JSON copy in the in-memory storage (a database or journal file needs one)
    assert len({id(r) for r in study._all_records()} | {id(r) for r in result.trials}) == trials
