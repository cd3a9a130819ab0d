"""The study: which configs to measure, in what order, and which one is best. Optuna decides and remembers.

- Strategies: ``grid`` (every point; when the budget is smaller, a seeded random sample of the grid, never "the
  first N"), ``random``, ``tpe`` (multivariate, told about infeasible results through Optuna's constraints),
  ``nsga2`` for several objectives; ``auto`` picks (see ``space.planned_strategy``).
- The spec's baseline config is measured first; the best is reported relative to it.
- Failures are data: an OOM, a crash, a timeout or an SLO miss is a completed trial with constraint > 0 (Optuna's
  way to say "infeasible"), so samplers learn to avoid the region. A config is never measured twice in a study:
  a sampler that proposes a measured config is told the recorded result again, without launching anything.
- Resume and sharing: with a storage URL (SQLite file, journal file, PostgreSQL) the study is named after the
  spec and its digest; a new run loads it, reconciles trials left RUNNING by a run that died (marked FAIL and
  measured again), and goes on. Several runners on one storage share the work. Every trial's full record is
  kept in the trial's user attributes, so the results can be rebuilt from storage alone.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from .results import StudyResult, TrialRecord, now
from .space import Config, planned_strategy
from .trial import TrialContext, run_trial
from .validation import LoadedSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say what matters; no "[I ...]" noise

RECORD_ATTR = "autotuner.record"
CONFIG_ATTR = "autotuner.config"
CONSTRAINT_NAME = "slo"  # Optuna's constraint: <= 0 feasible; samplers learn to avoid infeasible regions
MAX_DUPLICATE_PROPOSALS = 50  # the sampler keeps proposing measured configs: the space is exhausted


@dataclass
class StudyOptions:
    storage: str | None = None  # optuna storage URL; None: in memory (no resume)
    max_trials: int | None = None  # overrides search.max_trials
    timeout: float | None = None  # seconds; overrides search.timeout
    results_path: Path | None = None  # results.json, rewritten after every trial


@dataclass
class Study:
    loaded: LoadedSpec
    context: TrialContext
    options: StudyOptions = field(default_factory=StudyOptions)
    progress: Callable[[str], None] = lambda _text: None

    def __post_init__(self) -> None:
        spec, space = self.loaded.spec, self.loaded.space
        count = space.count()
        self.feasible_grid = count.feasible if count else None
        self.max_trials = self.options.max_trials or spec.search.max_trials
        self.strategy = planned_strategy(
            spec.search.strategy,
            multi_objective=spec.multi_objective,
            feasible=self.feasible_grid,
            max_trials=self.max_trials,
        )
        self.name = f"{spec.name}-{self.loaded.digest[:8]}"
        self.distributions: dict[str, BaseDistribution] = space.distributions()
        self.optuna = optuna.create_study(
            study_name=self.name,
            storage=self.options.storage,
            load_if_exists=True,
            directions=[t.direction for t in spec.objective],
            sampler=self._sampler(),
        )
        self.result = StudyResult(
            spec_name=spec.name,
            spec_file=str(self.loaded.path),
            spec_digest=self.loaded.digest,
            study_name=self.name,
            strategy=self.strategy,
            started=now(),
            objectives=[str(t) for t in spec.objective],
        )

    # ------------------------------------------------------------------------------------------------ sampling
    def _sampler(self) -> optuna.samplers.BaseSampler:
        seed = self.loaded.spec.search.seed
        if self.strategy == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True)
        if self.strategy == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)  # grid points are enqueued explicitly

    def _grid_plan(self, baseline: Config | None) -> list[Config]:
        """The grid points to measure after the baseline: all, or an unbiased seeded sample that fits the budget.

        ``max_trials`` counts every measured config, the baseline included.
        """
        configs = [c for c in self.loaded.space.grid() if baseline is None or c.hash != baseline.hash]
        budget = self.max_trials
        if budget is not None and baseline is not None:
            budget -= 1
        if budget is not None and budget < len(configs):
            chosen = random.Random(self.loaded.spec.search.seed).sample(configs, max(budget, 0))
            self.result.notes.append(
                f"grid of {len(configs)} configs besides the baseline, budget {max(budget, 0)}: measured a seeded "
                f"random sample (not the first {max(budget, 0)})"
            )
            return chosen
        return configs

    # ------------------------------------------------------------------------------------------------ running
    def run(self) -> StudyResult:
        self._reconcile()
        known = self._known_records()
        self.result.trials = sorted(known.values(), key=lambda r: r.number)
        spec = self.loaded.spec
        deadline = time.monotonic() + (
            self.options.timeout or (spec.search.timeout.total_seconds() if spec.search.timeout else float("inf"))
        )
        measured = {r.config_hash for r in known.values() if r.outcome != "skipped"}
        baseline = Config.of(spec.search.baseline) if spec.search.baseline is not None else None
        queue: list[Config] = [baseline] if baseline is not None else []
        if self.strategy == "grid":
            queue.extend(self._grid_plan(baseline))
        baseline_hash = baseline.hash if baseline is not None else None
        budget = self.max_trials if self.max_trials is not None else (len(queue) if self.strategy == "grid" else None)
        duplicates = 0
        while budget is None or self._measured_count() < budget:
            if time.monotonic() > deadline:
                self.result.notes.append("search.timeout reached: no new trial was started after it")
                break
            if self.strategy == "grid" or queue:
                if not queue:
                    break
                config = queue.pop(0)
                if config.hash in measured:
                    continue
                self._measure(config, baseline=config.hash == baseline_hash, trial=None)
                measured.add(config.hash)
                continue
            trial = self.optuna.ask(self.distributions)
            config = self.loaded.space.config_from_params(trial.params)
            if config.hash in measured or not self.loaded.space.satisfies(config):
                duplicates += 1
                self._tell_again(trial, config)
                if duplicates >= MAX_DUPLICATE_PROPOSALS:
                    self.result.notes.append("the sampler kept proposing measured or excluded configs: space exhausted")
                    break
                continue
            duplicates = 0
            self._measure(config, baseline=False, trial=trial)
            measured.add(config.hash)
        self.result.finished = now()
        self._choose_best()
        self._save()
        return self.result

    def _measured_count(self) -> int:
        return sum(1 for r in self.result.trials if r.outcome != "skipped" and r.repeat == 0)

    def _measure(self, config: Config, *, baseline: bool, trial: optuna.Trial | None) -> None:
        in_space = self.loaded.space.contains(config)
        if trial is None and in_space:
            self.optuna.enqueue_trial(self.loaded.space.params_from_config(config), skip_if_exists=False)
            trial = self.optuna.ask(self.distributions)
        number = len(self.result.trials)
        label = "baseline " if baseline else ""
        self.progress(f"trial {number}: {label}{config.id}")
        if trial is not None:
            trial.set_user_attr(CONFIG_ATTR, config.as_dict())
        record = run_trial(self.context, number, config, baseline=baseline)
        self.result.trials.append(record)
        if baseline:
            self.result.baseline_trial = record.number
        self.progress(
            f"trial {number}: {record.outcome}"
            + (f" ({record.reason})" if record.reason else "")
            + (f", objective {record.objective:.4g}" if record.objective is not None else "")
        )
        if trial is not None:
            self._tell(trial, record)
        self._choose_best()
        self._save()

    def _tell(self, trial: optuna.Trial, record: TrialRecord) -> None:
        trial.set_user_attr(RECORD_ATTR, record.model_dump(mode="json"))
        trial.set_constraint(CONSTRAINT_NAME, 0.0 if record.outcome == "feasible" else 1.0)
        self.optuna.tell(trial, self._values(record))

    def _tell_again(self, trial: optuna.Trial, config: Config) -> None:
        """A proposal we will not measure (measured already, or excluded by a constraint): answer from memory."""
        previous = next((r for r in self.result.trials if r.config_hash == config.hash), None)
        trial.set_user_attr(CONFIG_ATTR, config.as_dict())
        trial.set_constraint(CONSTRAINT_NAME, 0.0 if previous and previous.outcome == "feasible" else 1.0)
        trial.set_user_attr("autotuner.duplicate", True)
        self.optuna.tell(trial, self._values(previous) if previous else self._worst())

    def _values(self, record: TrialRecord) -> list[float]:
        values = [o.value for o in record.objectives]
        if record.outcome != "feasible" or not values or any(v is None for v in values):
            return self._worst()
        return [float(v) for v in values if v is not None]

    def _worst(self) -> list[float]:
        """What an infeasible trial reports: the constraint marks it infeasible; the value only must not win."""
        return [0.0 if t.direction == "maximize" else 1e12 for t in self.loaded.spec.objective]

    # ------------------------------------------------------------------------------------------------ resume
    def _reconcile(self) -> None:
        """Trials a dead run left RUNNING are failed (they will be measured again): no "running forever"."""
        for frozen in self.optuna.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if RECORD_ATTR not in frozen.user_attrs:
                self.optuna._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
                self.result.notes.append(
                    f"optuna trial {frozen.number} was left running by an earlier run: marked failed"
                )

    def _known_records(self) -> dict[str, TrialRecord]:
        known: dict[str, TrialRecord] = {}
        for frozen in self.optuna.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            record = _record(frozen)
            if record is not None and record.config_hash not in known:
                known[record.config_hash] = record
        if known:
            self.result.notes.append(f"resumed: {len(known)} configs measured by earlier runs are kept")
            for record in known.values():
                if record.baseline:
                    self.result.baseline_trial = record.number
        return known

    # ------------------------------------------------------------------------------------------------ outcome
    def _choose_best(self) -> None:
        """The best feasible trial by the first objective (its Pareto-optimal peers are in the report)."""
        spec = self.loaded.spec
        feasible = [r for r in self.result.trials if r.outcome == "feasible" and r.objective is not None]
        if not feasible:
            self.result.best_trial = None
            return
        sign = 1.0 if spec.objective[0].direction == "maximize" else -1.0
        best = max(feasible, key=lambda r: sign * (r.objective or 0.0))
        self.result.best_trial = best.number

    def _save(self) -> None:
        if self.options.results_path is not None:
            self.result.write(self.options.results_path)


def _record(frozen: FrozenTrial) -> TrialRecord | None:
    data: Any = frozen.user_attrs.get(RECORD_ATTR)
    if not isinstance(data, dict):
        return None
    try:
        return TrialRecord.model_validate(data)
    except ValueError:
        return None


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
