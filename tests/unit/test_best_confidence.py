"""``benchmarks/best_confidence.py`` and the version-2 landscape it replays: noise, naming, recording.

The benchmark's figures are only worth something if its pieces are right: the noise it replays must be the
recorded noise (seeded, resampled from the pooled residuals), the best it says the study names after k trials must
be what the study really names, and the landscape must be recorded and read as written. Small synthetic
landscapes with known values check each in a few seconds, with no engine.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from autotuner.results import Environment, ObjectiveRecord, StudyResult, TrialRecord
from autotuner.space import Config
from autotuner.validation import LoadedSpec, load_spec, load_spec_text

from .specs import mutate

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import best_confidence as bc  # noqa: E402
import sample_efficiency as se  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

# 6 configs: n-parallel 1/2/4 x threads 1/2; baseline n-parallel=1,threads=1 (inside the grid).
SMALL = mutate(
    "  n-batch: {low: 256, high: 2048, log: true, step: 256}\n",
    "",
    mutate("baseline: {n-parallel: 1, threads: 2}", "baseline: {n-parallel: 1, threads: 1}"),
)
BEST = {"n-parallel": 4, "threads": 2}
RUNNER_UP = {"n-parallel": 4, "threads": 1}
# Relative noise of every config's 8 values: half of them exact, a quarter 20% high, a quarter 20% low.
OUTLIER_PRONE = (1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 0.8, 0.8)


def small_spec(tmp_path: Path) -> LoadedSpec:
    return load_spec_text(str(tmp_path / "small.yaml"), SMALL, environ={})


def landscape(loaded: LoadedSpec, means: dict[str, float], shape: tuple[float, ...]) -> se.Landscape:
    """Every config of the small grid with values ``mean * shape`` (``means`` by config id, 40 otherwise)."""
    points = []
    for config in loaded.space.grid():
        mean = means.get(config.id, 40.0)
        values = tuple(mean * f for f in shape)
        outcome, objective, _bad = se.summarize(values, ["feasible"] * len(values))
        points.append(
            se.Point(
                config=config.as_dict(),
                hash=config.hash,
                outcome=outcome,
                objective=objective,
                baseline=config.as_dict() == {"n-parallel": 1, "threads": 1},
                values=values,
                outcomes=("feasible",) * len(values),
            )
        )
    return se.Landscape.of(points, grid_size=len(points))


def test_the_noise_is_the_pooled_scaled_residuals_of_configs_measured_twice() -> None:
    def point(name: str, values: tuple[float | None, ...], outcomes: tuple[str, ...]) -> se.Point:
        outcome, objective, _bad = se.summarize(values, outcomes)
        return se.Point({"x": name}, name, outcome, objective, values=values, outcomes=outcomes)

    land = se.Landscape.of(
        [
            point("a", (90.0, 110.0), ("feasible", "feasible")),  # mean 100: residuals -+0.1, scaled by sqrt(2)
            point("b", (200.0, 200.0, 260.0), ("feasible",) * 3),  # mean 220
            point("c", (50.0,), ("feasible",)),  # one value: no residual
            point("d", (100.0, None), ("feasible", "infeasible")),  # feasible in 1 of 2: infeasible, no residual
        ],
        grid_size=4,
    )
    assert land.points["d"].outcome == "infeasible" and land.points["d"].objective is None
    assert [p.hash for p in land.flaky()] == ["d"]
    noise = se.Noise.of(land)
    expected = [-0.1 * math.sqrt(2), 0.1 * math.sqrt(2)] + [r / 220 * math.sqrt(1.5) for r in (-20, -20, 40)]
    assert sorted(noise.residuals) == pytest.approx(sorted(expected))
    assert noise.cv == pytest.approx(math.sqrt(sum(r * r for r in expected) / 5))

    a = land.points["a"]
    measured = [noise.draw(seed)(a, repeat) for seed in range(10) for repeat in range(5)]
    assert measured == [noise.draw(seed)(a, repeat) for seed in range(10) for repeat in range(5)]  # seeded
    assert {m.outcome for m in measured} == {"feasible"}  # a never missed the SLOs: no draw of it does
    draws = [m.objective or 0.0 for m in measured]
    for value in draws:  # each one the mean times 1 + one of the residuals
        assert any(math.isclose(value / 100.0 - 1, r, abs_tol=1e-12) for r in expected)
    assert len({round(v, 9) for v in draws}) >= 4  # and they vary with seed and repeat
    assert se.Noise(()).factor(0, "a", 0) == 1.0  # no repeats recorded: no noise made up


def test_the_truth_is_a_majority_and_a_median() -> None:
    """A config counts as feasible when most of its measurements were, and its objective is the median of its
    feasible values: one collapse (a two-thread config on the 2-core machine, 3-40 tok/s) neither makes it
    infeasible nor drags its objective down, and a tie (half the measurements missed) counts as infeasible."""
    assert se.summarize([120.0, 130.0, None, 125.0], ["feasible", "feasible", "infeasible", "feasible"]) == (
        "feasible", 125.0, 2,
    )  # fmt: skip
    assert se.summarize([120.0, 9.0, 130.0], ["feasible"] * 3) == ("feasible", 120.0, None)  # not the mean, 86.3
    assert se.summarize([120.0, None], ["feasible", "infeasible"]) == ("infeasible", None, 1)
    assert se.summarize([None, None, 90.0], ["failed", "infeasible", "feasible"]) == ("failed", None, 0)
    with pytest.raises(ValueError, match="2 values but 1 outcomes"):
        se.summarize([1.0, 2.0], ["feasible"])


def test_replayed_measurements_miss_the_slos_as_often_as_recorded() -> None:
    """The noisy replay meets what a study meets: a config feasible in most passes still misses now and then (as
    often as it did), one infeasible in most still meets the SLOs now and then; the draw is keyed like the values."""
    often = se.Point(
        {"x": "often"}, "often", "feasible", 100.0, reason="ttft p90 3 s > 2 s",
        values=(100.0, None, 90.0, 110.0), outcomes=("feasible", "infeasible", "feasible", "feasible"),
    )  # fmt: skip
    rarely = se.Point(
        {"x": "rarely"}, "rarely", "infeasible", None, reason="e2e p99 12 s > 10 s",
        values=(None, None, 80.0), outcomes=("infeasible", "infeasible", "feasible"),
    )  # fmt: skip
    land = se.Landscape.of([often, rarely], grid_size=2)
    noise = se.Noise.of(land)
    for point, share, values in ((often, 0.25, (90.0, 100.0, 110.0)), (rarely, 2 / 3, (80.0,))):
        measured = [noise.draw(seed)(point, repeat) for seed in range(200) for repeat in range(5)]
        missed = [m for m in measured if m.outcome != "feasible"]
        assert abs(len(missed) / len(measured) - share) < 0.05, (point.hash, len(missed))
        assert {m.reason for m in missed} == {point.reason} and all(m.objective is None for m in missed)
        center = sum(values) / len(values)
        pool = noise.own.get(point.hash) or noise.residuals
        for m in measured:
            if m.outcome == "feasible":
                assert m.objective is not None and any(math.isclose(m.objective / center - 1, r) for r in pool)
        assert measured == [noise.draw(seed)(point, repeat) for seed in range(200) for repeat in range(5)]


def test_replays_draw_the_same_values_for_the_same_seed(tmp_path: Path) -> None:
    loaded = small_spec(tmp_path)
    land = landscape(loaded, {"n-parallel=4,threads=2": 100.0}, (0.9, 1.0, 1.1))
    noise = se.Noise.of(land)

    def values(seed: int, racing: bool) -> list[tuple[str, int, float | None]]:
        run = se.replay(loaded, land, strategy="grid", seed=seed, max_trials=8, racing=racing, draw=noise.draw(seed))
        for record in run.measured:
            mean = land.points[record.config_hash].objective or 0.0
            assert any(math.isclose((record.objective or 0.0) / mean - 1, r) for r in noise.residuals)
        return [(r.config_hash, r.repeat, r.objective) for r in run.measured]

    assert values(1, True) == values(1, True)
    assert values(1, True) != values(2, True)
    firsts = {(h, v) for h, repeat, v in values(1, True) if repeat == 0}
    assert firsts == {(h, v) for h, _repeat, v in values(1, False)}  # racing or not: the same first measurements


@pytest.mark.parametrize("racing", [True, False])
def test_the_named_best_after_the_last_trial_is_the_studys_best(tmp_path: Path, racing: bool) -> None:
    loaded = small_spec(tmp_path)
    land = landscape(loaded, {"n-parallel=4,threads=2": 100.0, "n-parallel=4,threads=1": 95.0}, OUTLIER_PRONE)
    noise = se.Noise.of(land)
    for seed in range(4):
        run = se.replay(loaded, land, strategy="auto", seed=seed, max_trials=10, racing=racing, draw=noise.draw(seed))
        named = bc.named_by_study(loaded.spec, run.measured)
        assert len(named) == len(run.measured)
        assert run.best is not None and named[-1] == run.best
        assert racing == any(r.repeat for r in run.measured)


def test_settled_counts_from_the_last_entry_into_the_tie_set() -> None:
    assert bc.settled_at(["a", "b", "b", "c"], {"b", "c"}) == 2
    assert bc.settled_at(["b", "a", "b"], {"b"}) == 3
    assert bc.settled_at(["b", "b"], {"b"}) == 1
    assert bc.settled_at(["b", "a"], {"b"}) is None
    assert bc.settled_at([None, "b"], {"b"}) == 2
    single = [
        TrialRecord(number=i, config={}, config_id=c, config_hash=c, outcome=o, objectives=[ObjectiveRecord(name="o", value=v)])
        for i, (c, o, v) in enumerate([("a", "infeasible", None), ("b", "feasible", 5.0), ("c", "feasible", 4.0)])
    ]  # fmt: skip
    assert bc.named_by_single(single) == [None, "b", "b"]


def test_racing_names_the_true_best_more_often_than_plain_selection(tmp_path: Path) -> None:
    """The runner-up (85) comes first whenever its single measurement is lucky (1 in 4 is 20% high) or the
    best's (100) unlucky: plain selection then names it; racing measures the leaders again and names the best.
    (Racing is not perfect here either: with 3 repeats in the budget the study has little to learn this
    landscape's noise (~14%) from, beyond its 7% prior, so a lucky leader can look separated after one repeat.)"""
    loaded = small_spec(tmp_path)
    land = landscape(loaded, {Config.of(BEST).id: 100.0, Config.of(RUNNER_UP).id: 85.0}, OUTLIER_PRONE)
    truth = bc.true_ranking(loaded, land)
    assert truth.tie_set == [Config.of(BEST).hash]  # the recording itself separates the best
    outcomes = bc.evaluate(loaded, land, set(truth.tie_set), seeds=range(20), budget=12, methods=(bc.RACING, bc.PLAIN))
    racing, plain = (o.correct(set(truth.tie_set)) for o in outcomes)
    assert racing >= 17 and racing > plain, (racing, plain)  # 17 and 15 of 20 when written (noise pooled)


def test_known_noise_is_seeded_and_spreads_each_config_as_told(tmp_path: Path) -> None:
    """The synthetic landscapes' noise: keyed by (seed, config, repeat) like the recorded one, centred on the true
    mean, and with each config's own spread (a steady config must not borrow an erratic one's)."""
    loaded = small_spec(tmp_path)
    land = landscape(loaded, {Config.of(BEST).id: 100.0}, (1.0,))
    noise = bc.KnownNoise(lambda c: 0.10 if int(c["threads"]) == 2 else 0.0)
    best = land.points[Config.of(BEST).hash]  # threads=2: spreads 10%
    steady = land.points[Config.of(RUNNER_UP).hash]  # threads=1: no spread
    draws = [noise.draw(7)(best, repeat).objective or 0.0 for repeat in range(400)]
    assert draws == [noise.draw(7)(best, repeat).objective for repeat in range(400)]
    assert draws != [noise.draw(8)(best, repeat).objective for repeat in range(400)]
    mean = sum(draws) / len(draws)
    sd = math.sqrt(sum((d - mean) ** 2 for d in draws) / (len(draws) - 1))
    assert abs(mean - 100.0) < 2.0 and 8.5 < sd < 11.5, (mean, sd)
    assert {noise.draw(7)(steady, repeat).objective for repeat in range(20)} == {40.0}


def test_the_synthetic_table_scores_each_landscape_against_its_known_truth(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--synthetic``: one row per landscape and budget, racing and plain on the same seeds, right meaning within
    3% of the true best mean (7 steady configs in the first landscape, 3 in the second)."""
    loaded = load_spec(se.SPEC)
    recorded = se.Landscape.read(se.DATA)
    bc.print_synthetic(loaded, recorded, seeds=2, budgets=[6])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("  ") and "/2 (" in line]
    assert len(rows) == len(bc.SYNTHETIC) == 2
    assert [row[-6] for row in rows] == ["7", "3"]  # configs within 3% of the best
    assert all(row[-5] == "6" for row in rows)  # the budget
    steady = se.synthetic_landscape(loaded, recorded, bc.SYNTHETIC[0].shape)
    best = max(steady.feasible(), key=lambda p: p.objective or 0.0)
    assert best.config["threads"] == 1 and best.config["n-parallel"] == 4 and best.config["n-batch"] == 1024


def test_a_version_1_landscape_still_reads(tmp_path: Path) -> None:
    config = {"config": {"n-parallel": 1, "threads": 2}, "hash": "d1d8b53b38", "id": "n-parallel=1,threads=2"}
    data = {
        "version": 1,
        "grid_size": 1,
        "configs": [{**config, "baseline": True, "outcome": "feasible", "objective": 68.5, "reason": ""}],
        "repeats": [{"id": config["id"], "hash": config["hash"], "objective_in_grid": 68.5, "objective_again": 70.0}],
    }
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(data))
    land = se.Landscape.read(path)
    assert land.version == 1 and land.best == 68.5 and land.points["d1d8b53b38"].values == (68.5,)
    assert land.repeats == (("n-parallel=1,threads=2", 68.5, 70.0),)
    assert se.Noise.of(land).residuals == ()  # one value per config: the repeats stay beside, as v1 meant them
    path.write_text(json.dumps({**data, "version": 3}))
    with pytest.raises(ValueError, match="version 3"):
        se.Landscape.read(path)


def _pass(
    tmp_path: Path, name: str, value: Callable[[str], float | None], *, extra: Sequence[TrialRecord] = ()
) -> Path:
    """A results.json measuring the shipped spec's baseline and grid once, ``value(config id)`` each."""
    loaded = load_spec(se.SPEC)
    configs = [Config.of({"n-parallel": 1, "threads": 2}), *loaded.space.grid()]
    trials = []
    for number, config in enumerate(configs, start=-1):
        v = value(config.id)
        trials.append(
            TrialRecord(
                number=number, config=config.as_dict(), config_id=config.id, config_hash=config.hash,
                baseline=number == -1, outcome="feasible" if v is not None else "infeasible",
                reason="" if v is not None else "ttft p90 3 s > 2 s",
                objectives=[ObjectiveRecord(name="maximize output_throughput", value=v)],
            )
        )  # fmt: skip
    result = StudyResult(
        spec_name=name, spec_file=f"{name}.yaml", spec_digest="0123456789abcdef", study_name=f"{name}-01234567",
        strategy="random", started="2026-11-22T12:00:00+00:00", objectives=["maximize output_throughput"],
        environment=Environment(host="h", cpu="cpu", cpus=2, memory_gib=1.0, python="3.11", engine="e", tool_version="0"),
        trials=trials + list(extra),
    )  # fmt: skip
    path = tmp_path / name / "results.json"
    path.parent.mkdir()
    result.write(path)
    return path


def test_record_keeps_every_measurement_of_every_pass(tmp_path: Path) -> None:
    flaky = "n-batch=256,n-parallel=4,threads=2"
    twice = Config.of({"n-batch": 512, "n-parallel": 2, "threads": 1})
    again = TrialRecord(
        number=60, config=twice.as_dict(), config_id=twice.id, config_hash=twice.hash, outcome="feasible",
        objectives=[ObjectiveRecord(name="maximize output_throughput", value=33.0)], repeat=1,
    )  # fmt: skip
    first = _pass(tmp_path, "pass-a", lambda _id: 30.0)
    second = _pass(tmp_path, "pass-b", lambda i: None if i == flaky else 36.0, extra=[again])
    v1 = tmp_path / "v1.json"
    v1.write_text(
        json.dumps(
            {
                "version": 1,
                "configs": [{"config": twice.as_dict(), "hash": twice.hash, "id": twice.id, "trial": 3,
                             "baseline": False, "outcome": "feasible", "objective": 27.0}],
                "repeats": [{"id": twice.id, "hash": twice.hash, "objective_in_grid": 27.0, "objective_again": 24.0}],
            }
        )
    )  # fmt: skip
    out = tmp_path / "landscape.json"
    data = se.record([first, second], out, load="idle", include_v1=v1)
    assert data["version"] == 2 and [p["name"] for p in data["passes"]] == ["pass-a", "pass-b", "v1", "v1-repeats"]
    rows = {row["id"]: row for row in data["configs"]}
    assert len(rows) == 49 and data["configs"][0]["baseline"]
    assert all(len(r["values"]) == len(r["outcomes"]) == len(r["passes"]) >= 2 for r in rows.values())
    plain = rows["n-batch=256,n-parallel=1,threads=1"]
    assert plain["values"] == [30.0, 36.0] and plain["objective"] == 33.0 and plain["outcome"] == "feasible"
    assert rows[flaky]["values"] == [30.0, None] and rows[flaky]["outcome"] == "infeasible"  # 1 of 2: no majority
    assert rows[flaky]["objective"] is None and rows[flaky]["reason"] == "ttft p90 3 s > 2 s"
    assert rows[twice.id]["values"] == [30.0, 36.0, 33.0, 27.0, 24.0]
    assert rows[twice.id]["passes"] == ["pass-a", "pass-b", "pass-b", "v1", "v1-repeats"]

    land = se.Landscape.read(out)
    assert land.version == 2 and land.grid_size == 48 and land.passes == ("pass-a", "pass-b", "v1", "v1-repeats")
    assert land.points[twice.hash].objective == pytest.approx(30.0) and land.best == pytest.approx(33.0)
    cv = se.Noise.of(land).cv
    assert cv > 0 and data["noise"]["pooled_cv"] == pytest.approx(cv, abs=1e-4)


def test_record_refuses_the_same_pass_twice(tmp_path: Path) -> None:
    """A run directory and its ``latest`` link are one pass: counted twice they would halve the noise."""
    first = _pass(tmp_path, "pass-a", lambda _id: 30.0)
    link = tmp_path / "latest"
    link.symlink_to(first.parent)
    with pytest.raises(SystemExit, match="same run as .*give each pass once"):
        se.record([first, link / "results.json"], tmp_path / "out.json", load="idle")
    assert not (tmp_path / "out.json").exists()


def test_record_refuses_passes_that_miss_grid_configs(tmp_path: Path) -> None:
    partial = _pass(tmp_path, "pass-a", lambda _id: 30.0)
    data = json.loads(partial.read_text())
    data["trials"] = data["trials"][:10]
    partial.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="measured in no pass"):
        se.record([partial], tmp_path / "out.json", load="idle")


def test_the_old_rule_is_kept_for_comparison_and_its_infeasible_count_only_grows(tmp_path: Path) -> None:
    """``--old-rule`` judges the same measurements by "infeasible if any missed, else the mean"; the table of
    infeasible configs after each pass shows why it was left: one miss in any later pass and a config is out."""
    flaky = "n-batch=256,n-parallel=4,threads=2"
    first = _pass(tmp_path, "pass-a", lambda _id: 30.0)
    second = _pass(tmp_path, "pass-b", lambda i: None if i == flaky else 36.0)
    third = _pass(tmp_path, "pass-c", lambda _id: 39.0)
    out = tmp_path / "landscape.json"
    se.record([first, second, third], out, load="idle")
    land = se.Landscape.read(out)
    by_id = {se._config_id(p): p for p in land.points.values()}
    assert by_id[flaky].outcome == "feasible" and by_id[flaky].objective == 34.5  # 2 of 3 met: median of 30, 39
    old = land.under_old_rule()
    assert {se._config_id(p): p for p in old.points.values()}[flaky].outcome == "infeasible"
    plain = "n-batch=256,n-parallel=1,threads=1"
    assert by_id[plain].objective == 36.0  # the median of 30, 36, 39
    assert {se._config_id(p): p for p in old.points.values()}[plain].objective == pytest.approx(35.0)  # their mean
    assert land.infeasible_by_passes() == [(0, 0), (1, 1), (1, 0)]  # old: stays out; majority: back in
