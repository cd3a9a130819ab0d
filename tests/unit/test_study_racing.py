"""Racing inside the real Study: repeats where they matter, the best named with its tie-set.

The study, its Optuna storage (in memory) and its budget are real; only the measurement is replaced, through the
``Study.run_trial`` seam, by draws from known distributions (seeded), standing for an engine whose throughput
per config is known: so what racing should conclude is known too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path

from autotuner.estimates import counts, tie_summary
from autotuner.results import ObjectiveRecord, StudyResult, TrialRecord
from autotuner.space import Config
from autotuner.study import Study, StudyOptions
from autotuner.trial import TrialContext
from autotuner.validation import LoadedSpec, load_spec_text

from .specs import NoLaunch, mutate

# 6 configs: n-parallel 1/2/4 x threads 1/2; baseline n-parallel=1,threads=1 (inside the grid).
SMALL = mutate(
    "  n-batch: {low: 256, high: 2048, log: true, step: 256}\n",
    "",
    mutate("baseline: {n-parallel: 1, threads: 2}", "baseline: {n-parallel: 1, threads: 1}"),
)


BASELINE = "n-parallel=1,threads=1"


def spec(tmp_path: Path, search: str) -> LoadedSpec:
    text = mutate(
        "search: {strategy: auto, max_trials: 6, timeout: 20m, seed: 0, baseline: {n-parallel: 1, threads: 1}}",
        f"search: {{{search}, timeout: 20m, seed: 0, baseline: {{n-parallel: 1, threads: 1}}}}",
        SMALL,
    )
    return load_spec_text(str(tmp_path / "small.yaml"), text, environ={})


Truth = Callable[[Mapping[str, object]], float | None]  # config -> true throughput (None: misses an SLO)


def measured(truth: Truth, cv: float, seed: int, log: list[TrialRecord], lucky: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    """A stand-in for the trial pipeline: the true value times normal noise (``cv``); ``lucky`` fixes the first
    measurement of a config id to a value (a noise outlier)."""
    rng = random.Random(seed)

    def run(_ctx: TrialContext, number: int, config: Config, *, baseline: bool = False, repeat: int = 0) -> TrialRecord:
        true = truth(config.as_dict())
        if lucky and config.id in lucky and repeat == 0:
            value: float | None = lucky[config.id]
        else:
            value = None if true is None else true * (1 + rng.gauss(0, cv))
        record = TrialRecord(
            number=number, config=config.as_dict(), config_id=config.id, config_hash=config.hash, baseline=baseline,
            outcome="feasible" if value is not None else "infeasible", reason="" if value is not None else "ttft p90",
            objectives=[ObjectiveRecord(name="maximize output_throughput", value=value)], repeat=repeat,
        )  # fmt: skip
        log.append(record)
        return record

    return run


def study(tmp_path: Path, loaded: LoadedSpec, run_trial) -> StudyResult:  # type: ignore[no-untyped-def]
    context = TrialContext(loaded=loaded, run_id="t", out_dir=tmp_path, launcher=NoLaunch(), bench=lambda **_: {})
    return Study(loaded, context, StudyOptions(), run_trial=run_trial).run()


def repeats_of(log: list[TrialRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in log:
        counts[record.config_id] = counts.get(record.config_id, 0) + (1 if record.repeat else 0)
    return counts


def test_a_dominating_config_is_confirmed_once_and_named_alone(tmp_path: Path) -> None:
    def truth(c: Mapping[str, object]) -> float:
        return 200.0 if c == {"n-parallel": 4, "threads": 2} else 50.0 + 10 * int(c["n-parallel"])  # type: ignore[call-overload]

    log: list[TrialRecord] = []
    # racing may take 3 repeats (50% of the 6-config grid): it stops after 2, once the best is separated
    result = study(tmp_path, spec(tmp_path, "strategy: grid, racing: {share: 50%}"), measured(truth, 0.03, 0, log))
    assert len([r for r in log if r.repeat == 0]) == 6  # the whole grid once
    repeats = repeats_of(log)
    assert repeats["n-parallel=4,threads=2"] == 1  # one confirming repeat, then separated
    assert repeats[BASELINE] == 1  # the gain is reported over the baseline: it is confirmed once too
    assert sum(repeats.values()) == 2  # clearly worse configs are never repeated
    assert result.ranking is not None and result.ranking.separated
    best = result.best()
    assert best is not None and best.config_id == "n-parallel=4,threads=2" and best.repeat == 0
    assert result.ranking.tie_set == [best.config_hash]
    assert tie_summary(result.ranking).startswith("best: n-parallel=4,threads=2, separated")
    assert len(result.trials) == 8  # results.json lists every measurement, repeats included


def test_tied_configs_get_repeats_up_to_the_cap_and_are_reported_tied(tmp_path: Path) -> None:
    def truth(c: Mapping[str, object]) -> float:
        return 100.0 if c["n-parallel"] == 4 else 40.0

    log: list[TrialRecord] = []
    loaded = spec(tmp_path, "strategy: grid, max_trials: 14, racing: {max_repeats: 4, share: 50%}")  # 7 repeats
    result = study(tmp_path, loaded, measured(truth, 0.05, 1, log))
    repeats = repeats_of(log)
    assert repeats["n-parallel=4,threads=1"] == 3 and repeats["n-parallel=4,threads=2"] == 3  # 4 measurements each
    assert repeats[BASELINE] == 1  # confirmed once, although clearly worse
    others = (config_id for config_id in repeats if config_id != BASELINE and not config_id.startswith("n-parallel=4"))
    assert all(repeats[config_id] == 0 for config_id in others)
    assert result.ranking is not None and not result.ranking.separated
    tied = {e.config_id for e in result.ranking.estimates if e.config_hash in result.ranking.tie_set}
    assert tied == {"n-parallel=4,threads=1", "n-parallel=4,threads=2"}
    assert "within noise of it" in tie_summary(result.ranking)
    for estimate in result.ranking.estimates:
        interval = estimate.interval
        assert interval.low is not None and interval.high is not None
        assert interval.low <= estimate.mean <= interval.high and len(estimate.values) == len(estimate.trials)


def test_repeats_interleave_the_candidates(tmp_path: Path) -> None:
    def truth(c: Mapping[str, object]) -> float:
        return 100.0 if c["n-parallel"] == 4 else 40.0

    log: list[TrialRecord] = []
    study(
        tmp_path, spec(tmp_path, "strategy: grid, racing: {max_repeats: 4, share: 100%}"), measured(truth, 0.05, 1, log)
    )
    order = [r.config_id for r in log if r.repeat and r.config_id != BASELINE]  # its one confirming repeat aside
    assert order[0] != order[1] and order[2] != order[3]  # A B, B A, ...: never one config's repeats in a row
    assert order[1] == order[2]  # the order reverses between rounds so drift cancels


def test_a_lucky_first_measurement_is_measured_again_and_loses(tmp_path: Path) -> None:
    """n-parallel=2,threads=2 is truly 90 but first measured at 130; the truly best (100) must be named."""

    def truth(c: Mapping[str, object]) -> float:
        if c == {"n-parallel": 4, "threads": 2}:
            return 100.0
        return 90.0 if c == {"n-parallel": 2, "threads": 2} else 40.0

    named = []
    for seed in range(10):
        log: list[TrialRecord] = []
        lucky = {"n-parallel=2,threads=2": 130.0}
        # 6 repeats for the race, enough to undo the luck, and the baseline's confirming one
        loaded = spec(tmp_path, "strategy: grid, max_trials: 14, racing: {share: 50%}")
        result = study(tmp_path, loaded, measured(truth, 0.03, seed, log, lucky))
        assert repeats_of(log)["n-parallel=2,threads=2"] >= 1  # the lucky one is not believed on one measurement
        best = result.best()
        named.append(best.config_id if best else None)
    assert named.count("n-parallel=4,threads=2") >= 8, named


def test_a_tied_baseline_is_said_so_and_the_leader_is_named(tmp_path: Path) -> None:
    def truth(c: Mapping[str, object]) -> float:
        return 100.0 if c["n-parallel"] == 1 and c["threads"] == 1 or c["n-parallel"] == 4 else 40.0

    log: list[TrialRecord] = []
    loaded = spec(tmp_path, "strategy: grid, racing: {max_repeats: 3, share: 100%}")
    result = study(tmp_path, loaded, measured(truth, 0.02, 3, log))
    ranking = result.ranking
    assert ranking is not None and not ranking.separated
    baseline, best = result.baseline(), result.best()
    assert baseline is not None and best is not None
    assert baseline.config_hash in ranking.tie_set  # 100 like the best: no gain over it is established
    leader = max(ranking.estimates, key=lambda e: e.mean)
    assert best.config_hash == ranking.best == ranking.leader == leader.config_hash  # the best mean is named
    assert "best mean" in ranking.tie_break
    assert "no gain over it is established" in tie_summary(ranking, baseline.config_hash)
    assert ranking.noise_cv is not None and ranking.noise_cv < 0.07  # learnt from the repeats: a quiet machine


def test_the_noise_level_is_learnt_from_the_repeats(tmp_path: Path) -> None:
    """On a noisy machine (30% per measurement) the pooled noise widens every interval beyond the 7% prior."""

    def truth(c: Mapping[str, object]) -> float:
        return 100.0 if c["n-parallel"] == 4 else 50.0

    log: list[TrialRecord] = []
    loaded = spec(tmp_path, "strategy: grid, racing: {max_repeats: 4, share: 100%}")
    result = study(tmp_path, loaded, measured(truth, 0.30, 5, log))
    ranking = result.ranking
    assert ranking is not None and ranking.noise_cv is not None and ranking.noise_cv > 0.12
    single = [e for e in ranking.estimates if len(e.values) == 1]
    for estimate in single:  # one measurement: +-1.96 x the learnt CV, far wider than the prior's +-14%
        assert estimate.interval.high is not None and estimate.interval.high > estimate.mean * 1.2


def test_max_trials_counts_repeats_and_keeps_a_share_for_racing(tmp_path: Path) -> None:
    def truth(c: Mapping[str, object]) -> float:
        return 100.0 if c["n-parallel"] == 4 else 95.0  # all close: racing would take everything it can

    log: list[TrialRecord] = []
    result = study(tmp_path, spec(tmp_path, "strategy: random, max_trials: 8"), measured(truth, 0.07, 0, log))
    assert len(log) <= 8 and len(result.trials) == len(log)
    assert len([r for r in log if r.repeat == 0]) == 6  # 8 - ceil(25% of 8) = 6 explore
    assert 1 <= len([r for r in log if r.repeat]) <= 2


def test_racing_off_names_the_single_best_measurement(tmp_path: Path) -> None:
    def truth(c: Mapping[str, object]) -> float:
        return 100.0 if c["n-parallel"] == 4 else 95.0

    log: list[TrialRecord] = []
    result = study(tmp_path, spec(tmp_path, "strategy: grid, racing: false"), measured(truth, 0.07, 0, log))
    assert all(r.repeat == 0 for r in log) and len(log) == 6
    assert result.ranking is not None  # intervals are still reported, with the noise prior for one measurement
    best = result.best()
    assert best is not None and best.objective == max(r.objective or 0 for r in log)


def test_a_config_that_misses_the_slos_on_a_repeat_is_not_recommended(tmp_path: Path) -> None:
    calls = {"n": 0}

    def truth(c: Mapping[str, object]) -> float | None:
        if c == {"n-parallel": 4, "threads": 2}:
            calls["n"] += 1
            return 200.0 if calls["n"] == 1 else None  # feasible once, then misses an SLO
        return 100.0 if c["n-parallel"] == 4 else 40.0

    log: list[TrialRecord] = []
    result = study(tmp_path, spec(tmp_path, "strategy: grid, racing: {share: 50%}"), measured(truth, 0.02, 0, log))
    best = result.best()
    assert best is not None and best.config_id == "n-parallel=4,threads=1"
    assert result.ranking is not None
    assert all(e.config_id != "n-parallel=4,threads=2" for e in result.ranking.estimates)
    # 1 of 2 is undecided: the third measurement decided (1 of 3), and a config that mostly misses is not raced on
    assert calls["n"] == 3


def test_a_leader_that_misses_the_slos_once_is_measured_again_and_kept_by_the_majority(tmp_path: Path) -> None:
    """A two-thread llama.cpp config on 2 cores now and then collapses and misses the SLOs; one such miss on its
    first repeat must not demote the best config: the next measurement decides, and its values that met count."""
    calls = {"n": 0}

    def truth(c: Mapping[str, object]) -> float | None:
        if c == {"n-parallel": 4, "threads": 2}:
            calls["n"] += 1
            return None if calls["n"] == 2 else 200.0  # met, missed (a collapse), met, ...
        return 100.0 if c["n-parallel"] == 4 else 40.0

    log: list[TrialRecord] = []
    result = study(tmp_path, spec(tmp_path, "strategy: grid, racing: {share: 50%}"), measured(truth, 0.02, 0, log))
    best = result.best()
    assert best is not None and best.config_id == "n-parallel=4,threads=2" and best.repeat == 0
    assert calls["n"] >= 3
    assert result.ranking is not None
    estimate = next(e for e in result.ranking.estimates if e.config_id == "n-parallel=4,threads=2")
    met = [r for r in log if r.config_id == "n-parallel=4,threads=2" and r.outcome == "feasible"]
    assert len(estimate.values) == len(met) == calls["n"] - 1  # the values that met the SLOs, the miss left out
    assert [r.repeat for r in log if r.config_id == "n-parallel=4,threads=2"] == list(range(calls["n"]))


def test_trials_carry_dashboard_attributes(tmp_path: Path) -> None:
    """optuna-dashboard is the live view: each trial shows its config, outcome and stage timings."""
    log: list[TrialRecord] = []
    loaded = spec(tmp_path, "strategy: grid, racing: false")
    context = TrialContext(loaded=loaded, run_id="t", out_dir=tmp_path, launcher=NoLaunch(), bench=lambda **_: {})
    the_study = Study(loaded, context, StudyOptions(), run_trial=measured(lambda c: 50.0, 0.05, 0, log))
    the_study.run()
    trials = the_study.optuna.get_trials(deepcopy=False)
    assert len(trials) == 6
    for trial in trials:
        assert {"config_id", "outcome", "reason", "stages", "levels"} <= set(trial.user_attrs)
        assert trial.user_attrs["outcome"] == "feasible" and trial.user_attrs["config_id"].startswith("n-parallel=")


def test_a_config_counts_when_most_of_its_measurements_met_the_slos() -> None:
    assert counts(1, 1) and counts(2, 3) and counts(3, 5)
    assert not counts(1, 2) and not counts(0, 1) and not counts(1, 3)
    assert counts(1, 2, undecided=True) and counts(2, 4, undecided=True)  # an even split: raced, not named
    assert not counts(1, 3, undecided=True) and not counts(0, 0, undecided=True)
