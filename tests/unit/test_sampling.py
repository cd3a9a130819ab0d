"""The ``tpe`` strategy's sampler (``autotuner.sampling``): its local steps and the neighbours they step to.

Everything runs on a real in-memory Optuna study; the objective is a formula, so each test knows what the
sampler should propose next.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
import pytest

from autotuner.sampling import LocalSearchTPE
from autotuner.space import Config, Space
from autotuner.validation import load_spec_text

from .specs import BASE, mutate

optuna.logging.set_verbosity(optuna.logging.WARNING)


def space_of(text: str) -> Space:
    return load_spec_text("s.yaml", text, environ={}).space


# ------------------------------------------------------------------------------------------------ neighbours
def test_neighbours_step_once_along_ordered_dimensions() -> None:
    space = space_of(BASE)  # n-parallel [1, 2, 4], threads [1, 2], n-batch 256..2048 step 256 (log)
    config = Config.of({"n-parallel": 2, "threads": 1, "n-batch": 1024})
    found = {c.id for c in space.neighbours(config)}
    assert found == {
        "n-batch=1024,n-parallel=1,threads=1",
        "n-batch=1024,n-parallel=4,threads=1",
        "n-batch=1024,n-parallel=2,threads=2",
        "n-batch=768,n-parallel=2,threads=1",
        "n-batch=1280,n-parallel=2,threads=1",
    }


def test_neighbours_stop_at_the_edges_and_respect_constraints() -> None:
    space = space_of(mutate('"n-parallel * threads <= 8"', '"n-parallel * threads <= 4"'))
    config = Config.of({"n-parallel": 4, "threads": 1, "n-batch": 2048})
    found = {c.id for c in space.neighbours(config)}
    # n-batch has no step above 2048; n-parallel has none above 4; threads=2 would make 4 * 2 > 4
    assert found == {"n-batch=2048,n-parallel=2,threads=1", "n-batch=1792,n-parallel=4,threads=1"}


def test_unordered_values_are_all_neighbours_and_continuous_dimensions_keep_theirs() -> None:
    text = mutate(
        "  threads: [1, 2]\n",
        '  threads: [1, 2]\n  kv-cache-type: ["f16", "q8_0", "q4_0"]\n  rope-scale: {low: 0.5, high: 2.0}\n',
    )
    space = space_of(text)
    config = Config.of({"n-parallel": 1, "threads": 1, "n-batch": 256, "kv-cache-type": "q8_0", "rope-scale": 1.25})
    found = space.neighbours(config)
    kv = {c.as_dict()["kv-cache-type"] for c in found if c.as_dict()["kv-cache-type"] != "q8_0"}
    assert kv == {"f16", "q4_0"}  # both other strings, not only the "adjacent" ones as written
    assert all(c.as_dict()["rope-scale"] == 1.25 for c in found)
    assert all(sum(a != b for a, b in zip(c.values, config.values, strict=True)) == 1 for c in found)


# ------------------------------------------------------------------------------------------------ the study
Objective = Callable[[dict[str, object]], float | None]


def run(space: Space, objective: Objective, trials: int, *, seed: int = 0, startup: int = 6) -> list[Config]:
    """The configs a real Optuna study driven by the sampler measures, in order, as ``autotuner.study`` drives it:
    a proposal of a measured config (TPE's may be one) is answered again and not measured; None from the
    objective is an infeasible trial."""
    distributions = space.distributions()
    sampler = LocalSearchTPE(space, distributions, seed=seed, startup=startup)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    measured: list[Config] = []
    for _ in range(50 * trials):
        if len(measured) == trials:
            break
        trial = study.ask(distributions)
        config = space.config_from_params(trial.params)
        value = objective(config.as_dict()) if space.satisfies(config) else None
        if config not in measured and space.satisfies(config):
            measured.append(config)
        trial.set_constraint("slo", 0.0 if value is not None else 1.0)
        study.tell(trial, value if value is not None else 0.0)
    return measured


def test_the_start_up_is_tpe_alone() -> None:
    """Before ``startup`` configs are measured nothing is a local step, even with a clear incumbent."""
    space = space_of(BASE)
    distributions = space.distributions()
    sampler = LocalSearchTPE(space, distributions, seed=0, startup=6)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for n in range(6):
        trial = study.ask(distributions)
        assert sampler.choose(study, study._storage.get_trial(trial._trial_id)) is None, n
        trial.set_constraint("slo", 0.0)
        study.tell(trial, float(n))


def test_every_other_proposal_after_the_start_is_an_unmeasured_neighbour_of_the_best() -> None:
    space = space_of(BASE)

    def objective(c: dict[str, object]) -> float | None:
        if c["threads"] == 2 and c["n-parallel"] == 4:
            return None  # infeasible: never the incumbent, however high it would score
        return float(c["n-batch"]) * float(c["n-parallel"])  # type: ignore[arg-type]

    for seed in range(5):
        measured = run(space, objective, 16, seed=seed)
        assert len(measured) == 16
        for n in range(6, 16, 2):  # 6, 8, ...: the local steps (every LOCAL_PERIOD-th, counting measured configs)
            feasible = [c for c in measured[:n] if objective(c.as_dict()) is not None]
            best = max(feasible, key=lambda c: (objective(c.as_dict()), -measured.index(c)))  # type: ignore[arg-type, return-value]
            unmeasured = {c.hash for c in space.neighbours(best)} - {c.hash for c in measured[:n]}
            if unmeasured:
                assert measured[n].hash in unmeasured, f"seed {seed}, trial {n}: {measured[n]} after best {best}"


def test_local_steps_climb_to_the_top_of_a_monotone_grid() -> None:
    """More of everything is better: the walk reaches the corner within the neighbours' reach."""
    space = space_of(BASE)

    def objective(c: dict[str, object]) -> float:
        return float(c["n-batch"]) + 1000.0 * float(c["n-parallel"]) + 500.0 * float(c["threads"])  # type: ignore[arg-type]

    best = Config.of({"n-parallel": 4, "threads": 2, "n-batch": 2048})
    found = [best.hash in {c.hash for c in run(space, objective, 24, seed=s)} for s in range(5)]
    assert all(found), found


def test_multi_objective_studies_get_tpe_alone() -> None:
    space = space_of(BASE)
    distributions = space.distributions()
    sampler = LocalSearchTPE(space, distributions, seed=0, startup=4)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    trial = study.ask(distributions)
    assert sampler.choose(study, study._storage.get_trial(trial._trial_id)) is None


@pytest.mark.parametrize("startup", [4, 6, 10])
def test_the_whole_grid_is_measured_once_when_the_budget_allows(startup: int) -> None:
    space = space_of(mutate('"n-parallel * threads <= 8"', '"n-parallel * threads <= 2"'))  # 24 configs
    measured: list[Config] = []
    seen: set[str] = set()
    distributions = space.distributions()
    study = optuna.create_study(
        direction="maximize", sampler=LocalSearchTPE(space, distributions, seed=1, startup=startup)
    )
    for _ in range(400):
        if len(seen) == 24:
            break
        trial = study.ask(distributions)
        config = space.config_from_params(trial.params)
        if not space.satisfies(config) or config.hash in seen:
            study.tell(trial, 0.0)  # what the Study does with a duplicate proposal: answered, not measured
            continue
        seen.add(config.hash)
        measured.append(config)
        study.tell(trial, float(config.as_dict()["n-batch"]))  # type: ignore[arg-type]
    assert len(seen) == 24
