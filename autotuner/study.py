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
  kept in the trial's user attributes, so the results can be rebuilt from storage alone (in memory: the record
  object itself, so a long study holds one copy of each trial).
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from .estimates import policy_for, race_state, ranking
from .probe import incumbent
from .results import StudyResult, TrialRecord, now
from .space import Config, planned_strategy
from .stats import next_repeats
from .storage import MAX_RETRY, Heartbeat, has_heartbeat, open_storage, worker_id, worker_is_dead_here
from .trial import TrialContext, run_trial
from .validation import LoadedSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say what matters; no "[I ...]" noise

RECORD_ATTR = "autotuner.record"  # the full TrialRecord: results can be rebuilt from storage alone
CONFIG_ATTR = "autotuner.config"
CLAIM_ATTR = "autotuner.claim"  # config hash, written when a worker takes a trial (before it checks for peers)
WORKER_ATTR = "autotuner.worker"  # host:pid:start-time of the worker measuring the trial
DUPLICATE_ATTR = "autotuner.duplicate"  # why a trial was not measured (its config is another trial's)
OUTSIDE_ATTR = "autotuner.outside"  # a baseline outside the search space: a FAIL trial holding its record
CONSTRAINT_NAME = "slo"  # Optuna's constraint: <= 0 feasible; samplers learn to avoid infeasible regions
MAX_DUPLICATE_PROPOSALS = 50  # the sampler keeps proposing measured configs: the space is exhausted


class StudyExists(ValueError):
    """The storage holds this study with trials already, and ``--resume`` was not given."""


@dataclass
class StudyOptions:
    storage: str | None = None  # optuna storage URL or journal file (see autotuner.storage); None: in memory
    resume: bool = False  # continue (or join) a study that already has trials in the storage
    heartbeat: int = 30  # seconds between trial heartbeats (RDB storages); a trial is stale after 2x + 1 s
    max_trials: int | None = None  # overrides search.max_trials
    timeout: float | None = None  # seconds; overrides search.timeout
    results_path: Path | None = None  # results.json, rewritten after every trial


@dataclass
class Study:
    loaded: LoadedSpec
    context: TrialContext
    options: StudyOptions = field(default_factory=StudyOptions)
    progress: Callable[[str], None] = lambda _text: None
    run_trial: Callable[..., TrialRecord] = run_trial  # the trial pipeline; a replay of recorded results in benchmarks

    def __post_init__(self) -> None:
        self.budget: int | None = None  # configs the search measures once (start() knows)
        self.total_budget: int | None = None  # everything: search + racing
        self.started_at = time.monotonic()
        self.done_here = 0  # trials this worker finished in this run (its pace gives the estimate)
        spec, space = self.loaded.spec, self.loaded.space
        count = space.count()
        self.feasible_grid = count.feasible if count else None
        self.max_trials = self.options.max_trials or spec.search.max_trials
        self.explore_trials = exploration_budget(self.loaded, self.max_trials)
        self.strategy = planned_strategy(
            spec.search.strategy,
            multi_objective=spec.multi_objective,
            feasible=self.feasible_grid,
            max_trials=self.explore_trials,
        )
        self.name = f"{spec.name}-{self.loaded.digest[:8]}"
        self.distributions: dict[str, BaseDistribution] = space.distributions()
        self.storage = open_storage(self.options.storage, heartbeat=self.options.heartbeat)
        self.worker = worker_id()
        self.poll = max(1.0, self.options.heartbeat / 2)  # how often a worker with nothing to do looks again
        self._started = False
        self._records: dict[int, TrialRecord | None] = {}  # finished trials' records by trial id (see _parsed)
        self.deadline = float("inf")
        self.plan: list[Config] | None = None  # grid strategies: the baseline and the grid points, in order
        self.baseline = Config.of(spec.search.baseline) if spec.search.baseline is not None else None
        self.baseline_hash = self.baseline.hash if self.baseline is not None else None
        self.optuna = optuna.create_study(
            study_name=self.name,
            storage=self.storage,
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
            # Tuning budgets are small (tens of trials): Optuna's 10 random start-up trials would be a fifth of them,
            # so the model starts after two per dimension (at least 4), and weighs more candidates per proposal
            # (cheap next to a trial). On the recorded 48-config landscape this halves the trials to a near-best
            # config (benchmarks/sample_efficiency.py).
            startup = min(10, max(4, 2 * len(self.distributions)))
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, n_startup_trials=startup, n_ei_candidates=64
            )
        if self.strategy == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)  # grid points are enqueued explicitly

    # ------------------------------------------------------------------------------------------------ running
    def start(self) -> None:
        """Open the study: refuse a silent mix-in, reconcile what dead runs left, load what is measured already.

        Idempotent, and measures nothing: ``run()`` and the pytest plugin (which measures one config per test item)
        both start here. The budget and the time budget count from the first call.
        """
        if self._started:
            return
        self._started = True
        self._check_resume()
        self._fail_stale()
        self._reconcile()
        self._known_records()  # notes what earlier runs measured, finds the baseline's trial
        self.result.trials = self._all_records()
        spec = self.loaded.spec
        self.deadline = time.monotonic() + (
            self.options.timeout or (spec.search.timeout.total_seconds() if spec.search.timeout else float("inf"))
        )
        plan = planned_configs(self.loaded, self.max_trials, strategy=self.strategy)
        if plan is not None and self.max_trials is not None and len(plan) < _plan_size(self.loaded):
            grid = _plan_size(self.loaded) - (1 if self.baseline is not None else 0)
            chosen = len(plan) - (1 if self.baseline is not None else 0)
            self.result.notes.append(
                f"grid of {grid} configs besides the baseline, budget {chosen}: measured a seeded random sample "
                f"(not the first {chosen})"
            )
        self.plan = plan
        # max_trials counts every measurement, repeats included: the search stops where racing's share begins.
        if self.max_trials is not None:
            self.budget, self.total_budget = self.explore_trials, self.max_trials
        elif plan is not None:  # a whole grid: racing's share comes on top of it
            self.budget, self.total_budget = len(plan), len(plan) + race_reserve(self.loaded, len(plan), on_top=True)
        else:  # sampled until the time budget: racing is bounded by max_repeats and that time budget
            self.budget = self.total_budget = None
        self.started_at = time.monotonic()
        self.done_here = 0

    def run(self) -> StudyResult:
        """Measure the plan (baseline, grid points) and then what the sampler proposes, sharing work via storage.

        Every config to measure is an Optuna trial popped with ``ask()`` (atomic across workers); a worker then
        claims it (``CLAIM_ATTR``) and measures it only if no other RUNNING or COMPLETE trial claims the same config
        with a lower number. When nothing is left to ask for but other workers still run trials, it waits: a worker
        that dies has its trial failed by the heartbeat check and re-queued, and the waiting worker picks it up.
        """
        self.start()
        plan = self.plan if self.plan is not None else ([self.baseline] if self.baseline is not None else [])
        if self.baseline is not None and not self.loaded.space.contains(self.baseline):
            self.measure(self.baseline, wait=False)  # no Optuna params: measured directly, kept in the storage
        self._enqueue([c for c in plan if self.loaded.space.contains(c)])
        while self.measure_next() is not None:
            pass
        self.race()
        return self.finish()

    def race(self) -> list[TrialRecord]:
        """Measure again where it matters, until the best is separated from the rest or racing's budget is spent.

        The incumbent and every config not yet shown worse (the tie-set) are re-measured one round at a time, in
        an order that alternates between rounds so drift hits them alike (``stats.next_repeats``); configs shown
        worse are never repeated; ``search.repeats`` is a floor for the best and its tie-set. A config whose
        measurements split evenly between meeting and missing the SLOs is raced as if it counted, so a leader whose
        repeat missed gets the measurement that decides (``estimates.counts``). Several workers race
        together: each repeat is claimed like a trial (``<config hash>#r<k>``), so none is measured twice.
        """
        self.start()
        spec = self.loaded.spec
        done: list[TrialRecord] = []
        if not spec.search.racing.enabled or spec.multi_objective:
            return done
        policy = policy_for(spec)
        while time.monotonic() < self.deadline:
            records = self._all_records()
            state = race_state(spec, records, undecided=True)
            _measured, running, _waiting = self._census()
            used = len(records) + len(running)
            left = self._race_left(used)
            wanted = next_repeats(
                state.values,
                left,
                spec.search.repeats,
                policy=policy,
                within=state.within,
                reference=self.baseline_hash,
            )
            busy = {claim.partition("#")[0] for claim in running}
            todo = [h for h in wanted if h not in busy]
            if not todo:
                if wanted and running and has_heartbeat(self.storage):  # another worker measures this round
                    time.sleep(self.poll)
                    self._fail_stale()
                    continue
                break
            for config_hash in todo:
                if time.monotonic() >= self.deadline or self._race_left(len(self._all_records())) <= 0:
                    break
                earlier = [r for r in records if r.config_hash == config_hash]  # its repeat number: all of them
                record = self._repeat(Config.of(earlier[0].config), len(earlier), baseline=earlier[0].baseline)
                if record is not None:
                    done.append(record)
        return done

    def _repeat(self, config: Config, repeat: int, *, baseline: bool) -> TrialRecord | None:
        """Measure ``config`` once more as repeat ``repeat`` (None if another worker claimed that repeat)."""
        trial = self._create_trial(config, inside=self.loaded.space.contains(config))
        claim = f"{config.hash}#r{repeat}"
        trial.set_user_attr(CLAIM_ATTR, claim)
        trial.set_user_attr(WORKER_ATTR, self.worker)
        owner = self._owner(trial, claim)
        if owner is not None:
            self._discard(trial, f"repeat {repeat} measured by trial {owner}")
            return None
        return self._measure(config, baseline=baseline, trial=trial, repeat=repeat)

    def measure_again(self, config: Config, repeat: int) -> TrialRecord | None:
        """Measure ``config`` once more on purpose, as repeat ``repeat`` (>= 1: never probed, outside the budget).

        For the A/B against main's baseline (ab.py); claimed like racing's repeats, so None if another worker
        measured that repeat."""
        if repeat < 1:
            raise ValueError(f"a re-measurement is repeat 1 or later, got {repeat}")
        self.start()
        return self._repeat(config, repeat, baseline=config.hash == self.baseline_hash)

    def _race_left(self, used: int) -> int:
        total = self.total_budget
        return (total - used) if total is not None else 1_000_000  # max_repeats and the time budget bound it

    def measure(self, config: Config, *, wait: bool = True) -> TrialRecord | None:
        """Measure ``config`` now, unless the study has it already (measured here or by another worker).

        The trial is created for this config directly (not through the queue, where other configs wait), then
        claimed like any other. When another worker holds the same config, ``wait`` waits for its record (None
        without ``wait``); if that worker dies, the config is measured here. Configs outside the search space (a
        baseline that fixes fewer flags) are stored as FAIL trials with their record, which samplers ignore.
        """
        self.start()
        while True:
            known = self._record_of(config.hash)
            if known is not None:
                return known
            inside = self.loaded.space.contains(config)
            trial = self._create_trial(config, inside=inside)
            trial.set_user_attr(CLAIM_ATTR, config.hash)
            trial.set_user_attr(WORKER_ATTR, self.worker)
            owner = self._owner(trial, config.hash)
            if owner is None:
                self._measure(config, baseline=config.hash == self.baseline_hash, trial=trial)
                return self._record_of(config.hash)
            self._discard(trial, f"config measured by trial {owner}")
            if not wait:
                return None
            while self._record_of(config.hash) is None and config.hash in self._census()[1]:
                time.sleep(self.poll)
                self._fail_stale()

    def measure_next(self) -> TrialRecord | None:
        """Measure the next config: a queued plan point, else the sampler's proposal; None when the study is done.

        Done means: the budget is used, the time budget passed, a grid's queue is empty, or every config of a
        finite space was measured. A proposal of a measured config (or one a constraint excludes) is answered
        from memory without launching anything; a run of such proposals makes the study queue an unmeasured one.
        """
        self.start()
        duplicates = 0
        while True:
            if time.monotonic() > self.deadline:
                self.result.notes.append("search.timeout reached: no new trial was started after it")
                return None
            measured, running, waiting = self._census()
            budget = self.budget
            if (budget is not None and len(measured) + len(running) >= budget and not waiting) or (
                self.strategy == "grid" and not waiting
            ):
                if running and has_heartbeat(self.storage):  # another worker's trial may die and come back
                    time.sleep(self.poll)
                    self._fail_stale()
                    continue
                return None
            trial = self.optuna.ask(self.distributions)
            frozen = self.storage_trial(trial)
            if self.strategy == "grid" and not _queued(frozen):  # another worker popped the last queued point
                self._discard(trial, "nothing left in the queue")
                continue
            config = self.loaded.space.config_from_params(trial.params)
            if not self.loaded.space.satisfies(config) or config.hash in measured:
                duplicates += 1
                self._tell_again(trial, config)
                if duplicates >= MAX_DUPLICATE_PROPOSALS:
                    left = self._unmeasured(measured | set(running))
                    if not left:
                        self.result.notes.append("every config of the space was measured: the search is complete")
                        return None
                    # The sampler is stuck on measured configs, yet some are left: queue one of those (seeded).
                    pick = random.Random(self.loaded.spec.search.seed + len(measured)).choice(left)
                    self._enqueue([pick])
                    duplicates = 0
                continue
            trial.set_user_attr(CLAIM_ATTR, config.hash)
            trial.set_user_attr(WORKER_ATTR, self.worker)
            owner = self._owner(trial, config.hash)
            if owner is not None:  # claimed first by another worker (a duplicate enqueue raced): not measured twice
                self._discard(trial, f"config measured by trial {owner}")
                continue
            self._measure(config, baseline=config.hash == self.baseline_hash, trial=trial)
            return self._record_of(config.hash)

    def finish(self) -> StudyResult:
        """Every record the storage holds (all workers'), the best chosen, ``results.json`` written."""
        self.start()
        self.result.trials = self._all_records()
        self.result.finished = now()
        self._choose_best()
        self._save()
        return self.result

    def _record_of(self, config_hash: str) -> TrialRecord | None:
        """The first record of a config: in this run's results, else in the storage (another worker's)."""
        mine = next((r for r in self.result.trials if r.config_hash == config_hash and r.repeat == 0), None)
        if mine is not None:
            return mine
        return self._known_records(note=False).get(config_hash)

    def _create_trial(self, config: Config, *, inside: bool) -> optuna.Trial:
        """A RUNNING trial for exactly this config (``ask()`` would pop whatever waits in the queue first)."""
        params = self.loaded.space.params_from_config(config) if inside else {}
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING,
            params=params,
            distributions={name: self.distributions[name] for name in params},
            user_attrs={CONFIG_ATTR: config.as_dict(), **({} if inside else {OUTSIDE_ATTR: True})},
        )
        trial_id = self.optuna._storage.create_new_trial(self.optuna._study_id, template_trial=template)
        return optuna.Trial(self.optuna, trial_id)

    def _unmeasured(self, taken: set[str]) -> list[Config]:
        """Grid configs nobody measured or runs (empty for a continuous space, which cannot be exhausted)."""
        count = self.loaded.space.count()
        if count is None or count.feasible is None:
            return []
        return [c for c in self.loaded.space.grid() if c.hash not in taken]

    def storage_trial(self, trial: optuna.Trial) -> FrozenTrial:
        return self.optuna._storage.get_trial(trial._trial_id)

    def _census(self) -> tuple[set[str], dict[str, int], int]:
        """Configs measured (COMPLETE with a record), claimed by RUNNING trials, and how many trials wait."""
        measured: set[str] = set()
        running: dict[str, int] = {}
        waiting = 0
        for frozen in self.optuna.get_trials(deepcopy=False):
            if frozen.state == TrialState.WAITING:
                waiting += 1
            elif frozen.state == TrialState.RUNNING and isinstance(frozen.user_attrs.get(CLAIM_ATTR), str):
                running[frozen.user_attrs[CLAIM_ATTR]] = frozen.number
            elif RECORD_ATTR in frozen.user_attrs and frozen.state in (TrialState.COMPLETE, TrialState.FAIL):
                record = self._parsed(frozen)
                if record is not None:
                    measured.add(record.config_hash)
        return measured, running, waiting

    def _owner(self, trial: optuna.Trial, config_hash: str) -> int | None:
        """Another trial that holds ``config_hash`` and goes first, if any (then ours is not measured).

        Optuna's only atomic step is popping a WAITING trial, and two workers starting together may both queue
        the plan. So: a trial that holds the same config with a lower number goes first (queued trials all exist
        before anyone pops them, so every worker sees them); a config measured already goes first; and for a
        sampler's proposal (created at ask time) any other RUNNING claim goes first: each worker writes its claim
        before reading the others', so of two racing proposals at most one is measured.
        """
        proposal = not _queued(self.storage_trial(trial))
        owners: list[int] = []
        for other in self.optuna.get_trials(deepcopy=False):
            if other.number == trial.number or other.user_attrs.get(DUPLICATE_ATTR):
                continue
            if other.state not in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE):
                continue
            if self._config_hash(other) != config_hash:
                continue
            if (
                other.number < trial.number
                or (other.state == TrialState.COMPLETE and RECORD_ATTR in other.user_attrs)
                or (proposal and other.state == TrialState.RUNNING)
            ):
                owners.append(other.number)
        return min(owners) if owners else None

    def _config_hash(self, frozen: FrozenTrial) -> str | None:
        claim = frozen.user_attrs.get(CLAIM_ATTR)
        if isinstance(claim, str):
            return claim
        try:
            return self.loaded.space.config_from_params(frozen.params).hash
        except (KeyError, ValueError, IndexError, TypeError):
            return None

    def _enqueue(self, configs: list[Config]) -> None:
        """Queue the plan's configs that are not measured, queued or running yet (each once, in plan order)."""
        present: set[str] = set()
        for frozen in self.optuna.get_trials(deepcopy=False):
            if frozen.state in (TrialState.WAITING, TrialState.RUNNING) or RECORD_ATTR in frozen.user_attrs:
                config_hash = self._config_hash(frozen)
                if config_hash is not None:
                    present.add(config_hash)
        for config in configs:
            if config.hash not in present:
                self.optuna.enqueue_trial(
                    self.loaded.space.params_from_config(config), user_attrs={CONFIG_ATTR: config.as_dict()}
                )
                present.add(config.hash)

    def _discard(self, trial: optuna.Trial, why: str) -> None:
        """A trial we will not measure and that must not count: failed, marked, never re-queued."""
        trial.set_user_attr(DUPLICATE_ATTR, why)
        self.optuna.tell(trial, state=TrialState.FAIL)

    def _measure(self, config: Config, *, baseline: bool, trial: optuna.Trial, repeat: int = 0) -> TrialRecord:
        label = ("baseline " if baseline else "") + (f"repeat {repeat} of " if repeat else "")
        probe = not baseline and not repeat
        self.context.incumbent = incumbent(self.loaded.spec, self._all_records()) if probe else None
        self.progress(f"trial {trial.number}{self._position()}: {label}{config.id}")
        if CONFIG_ATTR not in self.storage_trial(trial).user_attrs:  # queued and created trials carry it already
            trial.set_user_attr(CONFIG_ATTR, config.as_dict())
        try:
            with Heartbeat(self.storage or self.optuna._storage, trial._trial_id):
                record = self.run_trial(self.context, trial.number, config, baseline=baseline, repeat=repeat)
        except BaseException:
            self._give_back(trial)  # interrupted: the config is measured again (here on --resume, or by a peer)
            raise
        self.result.trials.append(record)
        # The parsed-records cache holds this very object: re-validating our own record from the storage's copy
        # (the first census after the tell) kept a second TrialRecord of every trial for the life of the study.
        self._records[trial._trial_id] = record
        self.done_here += 1
        if baseline and not repeat:
            self.result.baseline_trial = record.number
        try:  # stored before anything is printed: an interrupt now must not lose a finished measurement
            self._tell(trial, record)
        finally:
            self._choose_best()
            self._save()
        self.progress(
            f"trial {trial.number}: {record.outcome}"
            + (f" ({record.reason})" if record.reason else "")
            + (f", objective {record.objective:.4g}" if record.objective is not None else "")
        )
        return record

    def _position(self) -> str:
        """`` (3 of 6, 2m10s elapsed, ~3m left)``: where the study stands, from this worker's pace so far."""
        measured = len(self.result.trials)
        budget = self.total_budget
        elapsed = time.monotonic() - self.started_at
        parts = [f"{measured + 1} of {budget}" if budget else f"{measured + 1}", f"{_clock(elapsed)} elapsed"]
        done = self.done_here
        if budget and done:
            left = max(budget - measured, 0) * elapsed / done
            parts.append(f"~{_clock(left)} left")
        return f" ({', '.join(parts)})"

    def _give_back(self, trial: optuna.Trial) -> None:
        try:
            frozen = self.storage_trial(trial)
            self.optuna.tell(trial, state=TrialState.FAIL)
            if not frozen.user_attrs.get(OUTSIDE_ATTR):  # an outside config is measured again by run()/measure()
                _requeue(self.optuna, frozen)
        except Exception:  # noqa: BLE001 - best effort while interrupted; --resume reconciles what is left
            pass

    def _tell(self, trial: optuna.Trial, record: TrialRecord) -> None:
        for key, value in _dashboard_attrs(record).items():
            trial.set_user_attr(key, value)
        # In memory, the storage lives and dies with this process and only this study reads it: it holds the record
        # itself, not a JSON copy, so a long study keeps one copy of each trial (benchmarks/soak.py), where it kept
        # three (this, the results list, and the record parsed back from it). Databases and journals need JSON.
        trial.set_user_attr(RECORD_ATTR, record if self.storage is None else record.model_dump(mode="json"))
        trial.set_constraint(CONSTRAINT_NAME, 0.0 if record.outcome in ("feasible", "skipped") else 1.0)
        try:
            if self.storage_trial(trial).user_attrs.get(OUTSIDE_ATTR):
                self.optuna.tell(trial, state=TrialState.FAIL)  # no params: samplers must not learn from it
            else:
                self.optuna.tell(trial, self._values(record))
        except optuna.exceptions.UpdateFinishedTrialError:
            # Our heartbeat was missed for longer than the grace period: the trial was failed and re-queued, and
            # another worker may measure it again. The record stays in our results.json and the attributes above.
            self.result.notes.append(f"trial {trial.number} was failed by a heartbeat check while it ran")

    def _tell_again(self, trial: optuna.Trial, config: Config) -> None:
        """A proposal we will not measure (measured already, or excluded by a constraint): answer from memory."""
        previous = next((r for r in self._known_records(note=False).values() if r.config_hash == config.hash), None)
        trial.set_user_attr(CONFIG_ATTR, config.as_dict())
        trial.set_constraint(CONSTRAINT_NAME, 0.0 if previous and previous.outcome in ("feasible", "skipped") else 1.0)
        trial.set_user_attr(DUPLICATE_ATTR, "measured already" if previous else "excluded by a constraint")
        self.optuna.tell(trial, self._values(previous) if previous else self._worst())

    def _values(self, record: TrialRecord) -> list[float]:
        """Objective values for the sampler; a probe-dropped config reports its (low) probe value."""
        values = [o.value for o in record.objectives]
        if record.outcome not in ("feasible", "skipped") or not values or any(v is None for v in values):
            return self._worst()
        return [float(v) for v in values if v is not None]

    def _worst(self) -> list[float]:
        """What an infeasible trial reports: the constraint marks it infeasible; the value only must not win."""
        return [0.0 if t.direction == "maximize" else 1e12 for t in self.loaded.spec.objective]

    # ------------------------------------------------------------------------------------------------ resume
    def _check_resume(self) -> None:
        """An existing study with trials is continued only when asked: a second run must not silently mix in."""
        if self.options.resume or self.storage is None:
            return
        if self.optuna.get_trials(deepcopy=False):
            raise StudyExists(
                f"study {self.name!r} already has trials in {self.options.storage}: pass --resume to continue it "
                "(or to join it as another worker), or use another --storage to start afresh"
            )

    def _fail_stale(self) -> None:
        """RDB storages: trials whose worker stopped beating are failed and re-queued (Optuna's callback)."""
        if has_heartbeat(self.storage):
            optuna.storages.fail_stale_trials(self.optuna)

    def _reconcile(self) -> None:
        """Trials a dead run left RUNNING are failed and re-queued: no "running forever", nothing lost.

        Dead means: the worker that claimed it ran on this machine and its process is gone, or the storage has no
        heartbeats and the trial names no worker (older runs). Trials of live or remote workers on a heartbeat
        storage are left to the heartbeat check.
        """
        for frozen in self.optuna.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = frozen.user_attrs.get(WORKER_ATTR)
            dead = worker_is_dead_here(worker) if isinstance(worker, str) else not has_heartbeat(self.storage)
            if not dead or RECORD_ATTR in frozen.user_attrs:
                continue
            try:
                self.optuna._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker reconciled it first
            if CLAIM_ATTR in frozen.user_attrs and not frozen.user_attrs.get(OUTSIDE_ATTR):
                _requeue(self.optuna, frozen)
            self.result.notes.append(
                f"optuna trial {frozen.number} was left running by an earlier run: marked failed and queued again"
            )

    def _known_records(self, *, note: bool = True) -> dict[str, TrialRecord]:
        known: dict[str, TrialRecord] = {}
        trials = self.optuna.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        for frozen in sorted(trials, key=lambda t: t.number):
            stored = self._parsed(frozen)
            if stored is not None and stored.config_hash not in known:
                known[stored.config_hash] = stored
        for kept in known.values():
            if kept.baseline:
                self.result.baseline_trial = kept.number
        if known and note:
            self.result.notes.append(f"resumed: {len(known)} configs measured by earlier runs are kept")
        return known

    def _parsed(self, frozen: FrozenTrial) -> TrialRecord | None:
        """A finished trial's record, validated once: finished trials never change, and a census reads them all."""
        if frozen.state not in (TrialState.COMPLETE, TrialState.FAIL):
            return _record(frozen)
        if frozen._trial_id not in self._records:
            self._records[frozen._trial_id] = _record(frozen)
        return self._records[frozen._trial_id]

    def _all_records(self) -> list[TrialRecord]:
        """Every measurement in the storage (first ones and repeats, all workers'), in trial order.

        This worker's records come from its own results (the storage may lag behind a heartbeat-failed tell)."""
        mine = {r.number: r for r in self.result.trials}
        trials = self.optuna.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        for frozen in trials:
            stored = self._parsed(frozen)
            if stored is not None and stored.number not in mine:
                mine[stored.number] = stored
        return sorted(mine.values(), key=lambda r: r.number)

    # ------------------------------------------------------------------------------------------------ outcome
    def _choose_best(self) -> None:
        """The best config and its tie-set over every measurement (one objective), else the best single trial.

        One objective: ``estimates.ranking`` (the rule racing stops on) names the best among the configs most of
        whose measurements met the SLOs; its first such measurement is ``best_trial``. Several objectives: the best
        feasible trial by the first objective (its Pareto-optimal peers are in the report).
        """
        spec = self.loaded.spec
        feasible = [r for r in self.result.trials if r.met_slos]
        if not feasible:
            self.result.best_trial = None
            self.result.ranking = None
            return
        if not spec.multi_objective:
            state = race_state(spec, self.result.trials)
            ranked = ranking(spec, state)
            self.result.ranking = ranked
            if ranked is not None:
                self.result.best_trial = state.trials[ranked.best][0]
                return
        sign = 1.0 if spec.objective[0].direction == "maximize" else -1.0
        best = max(feasible, key=lambda r: sign * (r.objective or 0.0))
        self.result.best_trial = best.number

    def _save(self) -> None:
        if self.options.results_path is not None:
            self.result.write(self.options.results_path)


def planned_configs(loaded: LoadedSpec, max_trials: int | None, *, strategy: str | None = None) -> list[Config] | None:
    """What a grid study measures, in order: the baseline, then every grid point or an unbiased sample of them.

    ``max_trials`` counts every measured config, the baseline included; a budget smaller than the grid gets a
    seeded random sample (never "the first N"), in engine order so configs that share an engine run together.
    None for sampled strategies (random, tpe, nsga2), whose configs are only known as they are proposed. The
    pytest plugin makes one test item of each.
    """
    spec = loaded.spec
    max_trials = exploration_budget(loaded, max_trials or spec.search.max_trials)
    if strategy is None:
        count = loaded.space.count()
        strategy = planned_strategy(
            spec.search.strategy,
            multi_objective=spec.multi_objective,
            feasible=count.feasible if count else None,
            max_trials=max_trials,
        )
    if strategy != "grid":
        return None
    baseline = Config.of(spec.search.baseline) if spec.search.baseline is not None else None
    configs = [c for c in loaded.space.grid() if baseline is None or c.hash != baseline.hash]
    budget = max_trials
    if budget is not None and baseline is not None:
        budget -= 1
    if budget is not None and budget < len(configs):
        configs = random.Random(spec.search.seed).sample(configs, max(budget, 0))
    return ([baseline] if baseline is not None else []) + _engine_order(configs)


def race_reserve(loaded: LoadedSpec, total: int, *, on_top: bool = False) -> int:
    """Measurements for racing: ``search.racing.share`` of ``total``, rounded up.

    None for several objectives (no single best to race for), and none out of a budget under 4 (too small to
    split: every trial explores); ``on_top`` (a whole grid without max_trials) has nothing to split."""
    spec = loaded.spec
    racing = spec.search.racing
    if not racing.enabled or spec.multi_objective or (total < 4 and not on_top):
        return 0
    return max(1, math.ceil(racing.share * total))


def exploration_budget(loaded: LoadedSpec, max_trials: int | None) -> int | None:
    """How many configs the search measures once: ``max_trials`` less racing's share (None: no budget)."""
    return None if max_trials is None else max_trials - race_reserve(loaded, max_trials)


def _plan_size(loaded: LoadedSpec) -> int:
    """The whole grid plan's size (the baseline included): what a grid study measures without a budget."""
    baseline = loaded.spec.search.baseline
    grid = list(loaded.space.grid())
    inside = baseline is not None and any(c.hash == Config.of(baseline).hash for c in grid)
    return len(grid) + (1 if baseline is not None and not inside else 0)


def _record(frozen: FrozenTrial) -> TrialRecord | None:
    data: Any = frozen.user_attrs.get(RECORD_ATTR)
    if isinstance(data, TrialRecord):  # the in-memory storage holds the record itself (see Study._tell)
        return data
    if not isinstance(data, dict):
        return None
    try:
        return TrialRecord.model_validate(data)
    except ValueError:
        return None


def _queued(frozen: FrozenTrial) -> bool:
    """A trial that was queued (plan point, re-queued after its worker died), not proposed by the sampler."""
    return "fixed_params" in frozen.system_attrs or "failed_trial" in frozen.system_attrs


def _requeue(study: optuna.Study, frozen: FrozenTrial) -> None:
    """Queue a failed trial's config again, as Optuna's retry callback does (keeps its params and attributes)."""
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, frozen)


def _dashboard_attrs(record: TrialRecord) -> dict[str, Any]:
    """Readable attributes for optuna-dashboard: what happened, where the time went, the key metrics per level.

    Grouped into a few attributes (``stages``, ``levels``: mappings the dashboard shows as JSON) rather than one
    per figure: each attribute is a write to the storage, and on a shared PostgreSQL study two dozen writes per
    trial were most of a worker's overhead.
    """
    levels: dict[str, dict[str, float | None]] = {}
    for level in record.levels:
        figures: dict[str, float | None] = {
            name: level.stats.get(name) for name in ("ttft.p90", "tpot.p90", "e2e_latency.p99")
        }
        figures["output_throughput"] = level.output_throughput
        figures["error_rate"] = level.error_rate
        levels[f"{level.scenario}@{level.concurrency}"] = figures
    return {
        "config_id": record.config_id,
        "outcome": record.outcome + (f" (repeat {record.repeat})" if record.repeat else ""),
        "reason": record.reason,
        "stages": {stage.name: round(stage.seconds, 3) for stage in record.stages},
        "levels": levels,
    }


def _engine_order(configs: list[Config]) -> list[Config]:
    """Configs that differ only in client settings (``request.*``) next to each other, so they share an engine.

    A stable sort on the launched part: the set measured is unchanged (and still an unbiased sample)."""

    def launched(config: Config) -> str:
        return repr([(k, v) for k, v in config.values if not k.startswith("request.")])

    return sorted(configs, key=launched)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
