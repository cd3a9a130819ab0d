"""The replay harness of ``benchmarks/sample_efficiency.py``: the real Study on a recorded landscape, nothing launched.

The benchmark's figures are only worth something if the replay drives the study exactly as a real run would:
every strategy must end, never measure a config twice, and, given the whole grid as budget, find the best. A small
synthetic landscape (6 configs, one infeasible) checks that in well under a second, with no engine.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

from autotuner.space import Config
from autotuner.validation import LoadedSpec, load_spec, load_spec_text

from .specs import mutate

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import sample_efficiency as se  # noqa: E402

SMALL = mutate(
    "  n-batch: {low: 256, high: 2048, log: true, step: 256}\n",
    "",
    mutate("baseline: {n-parallel: 1, threads: 2}", "baseline: {n-parallel: 1, threads: 1}"),
)


def small_spec(tmp_path: Path) -> LoadedSpec:
    return load_spec_text(str(tmp_path / "small.yaml"), SMALL, environ={})


def small_landscape(loaded: LoadedSpec) -> se.Landscape:
    """Throughput grows with n-parallel, a little with threads; n-parallel=4,threads=2 misses an SLO."""
    points = []
    for config in loaded.space.grid():
        values: dict[str, Any] = config.as_dict()
        infeasible = values == {"n-parallel": 4, "threads": 2}
        points.append(
            se.Point(
                config=values,
                hash=config.hash,
                outcome="infeasible" if infeasible else "feasible",
                objective=None if infeasible else 10.0 * values["n-parallel"] + values["threads"],
                reason="ttft p90 3.1 s > 2 s" if infeasible else "",
                baseline=values == {"n-parallel": 1, "threads": 1},
            )
        )
    return se.Landscape.of(points, grid_size=len(points))


def test_the_synthetic_landscape_has_one_best(tmp_path: Path) -> None:
    landscape = small_landscape(small_spec(tmp_path))
    best = Config.of({"n-parallel": 4, "threads": 1})
    assert landscape.best == 41.0
    assert landscape.hits(0.02) == {best.hash}
    assert len(landscape.hits(0.5)) == 3  # 41, 22 and 21 are >= 20.5


@pytest.mark.parametrize("strategy", se.STRATEGIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_strategy_ends_never_repeats_and_finds_the_best(tmp_path: Path, strategy: str, seed: int) -> None:
    loaded = small_spec(tmp_path)
    landscape = small_landscape(loaded)
    run = se.replay(loaded, landscape, strategy=strategy, seed=seed, max_trials=landscape.grid_size)
    hashes = [r.config_hash for r in run.measured]
    assert len(hashes) == len(set(hashes))  # never a config twice
    assert set(hashes) <= set(landscape.points)
    assert run.measured[0].baseline and run.measured[0].config == {"n-parallel": 1, "threads": 1}
    assert len(run.measured) <= landscape.grid_size
    position = se.trials_to_hit(run, landscape.hits(0.02))
    assert position is not None and 1 <= position <= landscape.grid_size
    infeasible = [r for r in run.measured if r.outcome == "infeasible"]
    assert all(r.objective is None and r.reason for r in infeasible)  # replayed as recorded
    if strategy in ("grid", "auto"):  # auto: the whole grid fits the budget, so it is the grid
        assert run.resolved == "grid" and len(run.measured) == landscape.grid_size


def test_the_replay_launches_nothing(tmp_path: Path) -> None:
    loaded = small_spec(tmp_path)
    run = se.replay(loaded, small_landscape(loaded), strategy="tpe", seed=0, max_trials=3)
    assert len(run.measured) == 3  # answered from the landscape: the launcher and bench would have raised


def test_efficiency_rows_and_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loaded = small_spec(tmp_path)
    landscape = small_landscape(loaded)
    rows = se.efficiency(loaded, landscape, seeds=[0, 1], budget=landscape.grid_size)
    assert [r.label for r in rows] == ["grid", "random", "tpe", "auto"]  # the spec's budget (6) is the grid's
    assert all(len(r.counts) == 2 and r.misses == 0 for r in rows)
    se.print_spread(landscape, 0.02)
    se.print_table(rows, landscape, seeds=2)
    out = capsys.readouterr().out
    assert "within 2% of the best" in out and "auto (runs as grid" in out


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # the study gives the trial back
def test_a_config_missing_from_the_landscape_is_an_error(tmp_path: Path) -> None:
    loaded = small_spec(tmp_path)
    landscape = small_landscape(loaded)
    holed = se.Landscape({h: p for h, p in landscape.points.items() if not p.baseline}, landscape.grid_size)
    with pytest.raises(KeyError, match="not in the recorded landscape"):
        se.replay(loaded, holed, strategy="grid", seed=0, max_trials=None)


@pytest.mark.skipif(not se.DATA.exists(), reason="the landscape has not been recorded")
def test_the_recorded_landscape_covers_the_shipped_spec() -> None:
    """The stored data must still describe tuning_specs/smollm2-cpu.yaml: its grid and its baseline, nothing more."""
    loaded = load_spec(se.SPEC)
    data = json.loads(se.DATA.read_text())
    landscape = se.Landscape.read(se.DATA)
    grid = {c.hash for c in loaded.space.grid()}
    assert data["spec_digest"] == loaded.digest, "the spec changed since the landscape was recorded"
    assert landscape.grid_size == len(grid) >= 48
    assert grid <= set(landscape.points)
    assert all("samples" not in json.dumps(c) for c in data["configs"])  # kept small
    if data["version"] >= 2:  # every measurement kept, the noise known; the truth (objective) follows from them
        assert len(landscape.passes) >= 2
        for point in landscape.points.values():
            assert len(point.values) == len(point.outcomes) >= 2
            met = [v for v, o in zip(point.values, point.outcomes, strict=True) if o == "feasible" and v is not None]
            assert (point.outcome == "feasible") == (2 * len(met) > len(point.values))  # se.FEASIBLE_RULE
            assert point.objective == (statistics.median(met) if point.outcome == "feasible" else None)
        assert se.Noise.of(landscape).cv > 0
    run = se.replay(loaded, landscape, strategy="random", seed=0, max_trials=len(grid) + 1)
    assert se.trials_to_hit(run, landscape.hits()) is not None


def test_synthetic_landscapes_answer_by_their_shape_the_baseline_too() -> None:
    """The baseline (n-batch left to llama.cpp's default, 2048) is answered by the shape, on the shape's scale:
    its recorded throughput landed within 2% of one shape's best, which made that shape's figure 1 trial."""
    loaded = load_spec(se.SPEC)
    recorded = se.Landscape.read(se.DATA)
    cliff = se.synthetic_landscape(loaded, recorded, se.SYNTHETIC["ridge, infeasible cliff"])
    assert cliff.grid_size == recorded.grid_size == 48
    over = [p for p in cliff.points.values() if not p.baseline and p.config["n-parallel"] * p.config["n-batch"] > 4096]
    assert over and all(p.outcome == "infeasible" and p.objective is None for p in over)
    best = max(cliff.feasible(), key=lambda p: p.objective or 0.0)
    assert best.config["n-parallel"] * best.config["n-batch"] == 4096 and best.config["threads"] == 2
    baseline = [p for p in cliff.points.values() if p.baseline]
    assert [p.hash for p in baseline] == [p.hash for p in recorded.points.values() if p.baseline]
    assert baseline[0].objective == pytest.approx(60 + 0.01 * 1 * 2048 + 4 * 2)  # n-parallel=1, threads=2
    for name, shape in se.SYNTHETIC.items():
        land = se.synthetic_landscape(loaded, recorded, shape)
        base = next(p for p in land.points.values() if p.baseline)
        assert base.hash not in land.hits(), f"{name}: the baseline alone would be a hit"


def test_the_synthetic_table_prints_every_shape(capsys: pytest.CaptureFixture[str]) -> None:
    se.print_synthetic(load_spec(se.SPEC), se.Landscape.read(se.DATA), seeds=1, tolerance=0.02)
    out = capsys.readouterr().out
    assert all(name in out for name in se.SYNTHETIC) and "tpe median/mean" in out
