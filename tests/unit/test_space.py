"""The search space: grids, stable config ids, and the mapping to Optuna distributions."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from autotuner.space import Config, Space, dimension_values, planned_strategy
from autotuner.spec import Choice, Range
from autotuner.validation import load_spec_text

from .specs import BASE, mutate


def space_of(text: str) -> Space:
    return load_spec_text("s.yaml", text, environ={}).space


def test_grid_of_the_base_spec() -> None:
    space = space_of(BASE)
    configs = list(space.grid())
    assert len(configs) == 3 * 2 * 8
    assert configs[0].as_dict() == {"n-batch": 256, "n-parallel": 1, "threads": 1}
    assert len({c.id for c in configs}) == len(configs)
    assert len({c.hash for c in configs}) == len(configs)


def test_constraints_filter_the_grid() -> None:
    space = space_of(mutate('"n-parallel * threads <= 8"', '"n-parallel * threads <= 2"'))
    configs = list(space.grid())
    assert all(c.as_dict()["n-parallel"] * c.as_dict()["threads"] <= 2 for c in configs)  # type: ignore[operator]
    count = space.count()
    assert count is not None and count.total == 48 and count.feasible == len(configs) == 3 * 8


def test_constraints_can_read_fixed_args() -> None:
    space = space_of(mutate('"n-parallel * threads <= 8"', '"n-ctx / n-parallel >= 2048"'))
    assert {c.as_dict()["n-parallel"] for c in space.grid()} == {1, 2}


def test_float_steps_are_exact() -> None:
    assert dimension_values(Range(low=0.5, high=0.9, step=0.1)) == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert dimension_values(Range(low=0.1, high=0.3, step=0.05)) == [0.1, 0.15, 0.2, 0.25, 0.3]


def test_int_range_without_step_steps_by_one_and_float_is_continuous() -> None:
    assert dimension_values(Range(low=1, high=4)) == [1, 2, 3, 4]
    assert dimension_values(Range(low=0.1, high=0.9)) is None
    space = Space({"x": Range(low=0.1, high=0.9), "y": Choice(values=(1, 2))})
    assert space.continuous == ["x"] and not space.is_finite and space.count() is None
    with pytest.raises(ValueError, match="continuous"):
        list(space.grid())


def test_values_keep_their_types() -> None:
    text = mutate(
        "  threads: [1, 2]", "  threads: [1, 2]\n  flag: [true, false]\n  policy: [lpm, fcfs]\n  frac: [0.5, 1.0]"
    )
    config = next(space_of(text).grid())
    values = config.as_dict()
    assert type(values["flag"]) is bool and type(values["policy"]) is str
    assert type(values["frac"]) is float and type(values["threads"]) is int


def test_config_ids_are_readable_and_order_independent() -> None:
    a = Config.of({"threads": 1, "n-parallel": 2})
    b = Config.of({"n-parallel": 2, "threads": 1})
    assert a == b and a.id == b.id == "n-parallel=2,threads=1" and a.hash == b.hash
    assert Config.of({"x": True, "y": 0.5, "z": "lpm"}).id == "x=true,y=0.5,z=lpm"
    assert Config.of({}).id == "default"


def test_config_hash_distinguishes_types() -> None:
    hashes = {Config.of({"x": v}).hash for v in (1, 1.0, "1", True)}
    assert len(hashes) == 4


# Pinned: a config's hash must never change across versions, runs or machines (baselines and resumed studies
# refer to configs by it). Changing these values is a breaking change.
PINNED = [
    ({"n-parallel": 2, "threads": 1}, "c371044ffe"),
    ({"x": 1.0}, "e933c72b84"),
    ({"x": 1}, "5aba867506"),
    ({"x": True}, "c098814200"),
    ({"x": "1"}, "8e00509177"),
]


@pytest.mark.parametrize(("values", "expected"), PINNED)
def test_config_hash_is_pinned(values: dict[str, object], expected: str) -> None:
    assert Config.of(values).hash == expected  # type: ignore[arg-type]


def test_config_hash_is_the_same_in_another_process() -> None:
    code = "from autotuner.space import Config; print(Config.of({'n-parallel': 2, 'threads': 1}).hash)"
    env = {"PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "c371044ffe"


def test_distributions_and_round_trip_through_optuna() -> None:
    space = space_of(BASE)
    distributions = space.distributions()
    assert isinstance(distributions["n-parallel"], optuna.distributions.CategoricalDistribution)
    # log scale with step 256: sampled as a log-scale grid index, mapped back to the value
    index = distributions["n-batch"]
    assert isinstance(index, optuna.distributions.IntDistribution) and index.log and (index.low, index.high) == (1, 8)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask(distributions)
        config = space.config_from_params(trial.params)
        assert space.contains(config)
        assert space.params_from_config(config) == trial.params
        seen.add(config.as_dict()["n-batch"])
        study.tell(trial, 1.0)
    assert seen <= {256 * k for k in range(1, 9)} and len(seen) > 3


def test_float_and_int_ranges_map_to_optuna() -> None:
    space = Space(
        {
            "a": Range(low=1, high=10, step=4),  # grid 1, 5, 9: high snapped to the last grid point
            "b": Range(low=0.5, high=0.9, step=0.1),
            "c": Range(low=1e-3, high=1.0, log=True),
            "d": Range(low=1, high=64, log=True),
        }
    )
    d = space.distributions()
    assert d["a"] == optuna.distributions.IntDistribution(1, 9, step=4)
    assert d["b"] == optuna.distributions.FloatDistribution(0.5, 0.9, step=0.1)
    assert d["c"] == optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)
    assert d["d"] == optuna.distributions.IntDistribution(1, 64, log=True)


def test_contains() -> None:
    space = space_of(BASE)
    assert space.contains(Config.of({"n-parallel": 2, "threads": 1, "n-batch": 512}))
    assert not space.contains(Config.of({"n-parallel": 3, "threads": 1, "n-batch": 512}))
    assert not space.contains(Config.of({"n-parallel": 2, "threads": 1, "n-batch": 300}))
    assert not space.contains(Config.of({"n-parallel": 2, "threads": 1}))
    assert not space.contains(Config.of({"n-parallel": 2.0, "threads": 1, "n-batch": 512}))


@pytest.mark.parametrize(
    ("strategy", "multi", "feasible", "max_trials", "expected"),
    [
        ("auto", False, 16, None, "grid"),  # a small grid is measured whole
        ("auto", False, 16, 16, "grid"),
        ("auto", False, 16, 15, "tpe"),  # ... when it fits the budget
        ("auto", False, 48, None, "tpe"),  # a larger one goes to TPE, which still measures it all if it can
        ("auto", False, 48, 48, "tpe"),
        ("auto", False, 48, 6, "tpe"),
        ("auto", True, 48, 6, "nsga2"),
        ("auto", False, None, 20, "tpe"),
        ("random", False, 4, 20, "random"),
    ],
)
def test_planned_strategy(
    strategy: str, multi: bool, feasible: int | None, max_trials: int | None, expected: str
) -> None:
    assert planned_strategy(strategy, multi_objective=multi, feasible=feasible, max_trials=max_trials) == expected
