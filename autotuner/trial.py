"""One trial, as a staged pipeline: launch -> ready -> bench (warm-up, then each level) -> judge -> teardown.

Like tasks in a workflow engine, each stage has a timeout, its own record (start, end, ok, detail) and one way
to fail. What can go wrong with a config (it runs out of memory, refuses a flag, crashes, never gets ready,
misses an SLO) becomes the trial's outcome with its reason and logs: a result, fed back to the search. What is
wrong with the machine (no Docker daemon, genai-bench missing) raises ``InfrastructureError`` and stops the run.
Teardown always runs, and its errors are recorded apart: a finished trial is never marked failed because its
engine was slow to stop (the original system lost results that way).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .bench.measurement import LevelFailure, LevelKey, LevelResult, Measurement
from .engines.profile import FailureKind, split_flags
from .estimates import level_intervals
from .launch import Launcher, LaunchFailed, wait_until_ready
from .launch.base import Deployment, LaunchRequest
from .launch.plan import launch_request
from .objective import ObjectiveValue, evaluate, level_value
from .probe import Incumbent, probe_workload, verdict
from .results import CheckRecord, LevelRecord, ObjectiveRecord, SampleSet, Stage, TrialRecord
from .slo import LevelVerdict, judge
from .space import Config
from .spec import SLO, TuningSpec, Workload
from .units import parse_percentile
from .validation import LoadedSpec

Progress = Callable[[str], None]
StageSink = Callable[[str, float, bool, str], None]  # name, seconds (ending now), ok, detail
LAUNCH_ATTEMPTS = 2  # a launch is retried once, only when the free port we chose was taken before the engine bound it
STAT_NAMES = ("mean", "p50", "p90", "p99")


class Bench(Protocol):
    """Runs the workload against a ready engine; calls ``on_level`` after each level ("stop" ends early)."""

    def __call__(
        self,
        *,
        url: str,
        request: LaunchRequest,
        workload: Workload,
        out_dir: Path,
        on_level: Callable[[LevelKey, LevelResult], str | None],
        progress: Progress,
        on_stage: StageSink,
    ) -> dict[LevelKey, LevelResult]: ...


@dataclass
class TrialContext:
    """What every trial of one study shares."""

    loaded: LoadedSpec
    run_id: str
    out_dir: Path  # reports/<spec>/<run-id>
    launcher: Launcher
    bench: Bench
    progress: Progress = lambda _text: None
    early_stop: bool = True  # stop a config after the first level that breaks a hard SLO
    stop_grace: float = 15.0
    # Engine reuse: configs that differ only in client-side settings (request.*) share one launch. The engine of
    # the last trial stays up while the study may still need it; ``release()`` stops it at the end.
    reuse_engines: bool = False
    warm: WarmEngine | None = None
    # The best config so far, set by the study before each trial: a new config is probed against it first
    # (see autotuner.probe); None for the baseline, repeats, or where a probe is unsound.
    incumbent: Incumbent | None = None

    def take_warm(self, key: str, stages: _Stages, record: TrialRecord) -> WarmEngine | None:
        """The warm engine if it is this config's engine and still alive; otherwise stop it (in this timeline)."""
        warm, self.warm = self.warm, None
        if warm is None:
            return None
        if warm.key == key and warm.deployment.exit_code() is None:
            return warm
        _teardown(self, warm.deployment, stages, record, name=f"teardown (engine of trial {warm.trial})")
        return None

    def keep_or_stop(self, engine: WarmEngine, stages: _Stages, record: TrialRecord) -> None:
        if self.reuse_engines and engine.deployment.exit_code() is None and record.outcome != "failed":
            self.warm = engine
            return
        _teardown(self, engine.deployment, stages, record)

    def release(self) -> None:
        """Stop the engine kept warm for a next trial that will not come."""
        warm, self.warm = self.warm, None
        if warm is not None:
            warm.deployment.stop(self.stop_grace)


@dataclass(frozen=True)
class WarmEngine:
    key: str
    deployment: Deployment
    trial: int  # the trial that launched it


@dataclass
class _Stages:
    records: list[Stage] = field(default_factory=list)

    def add(self, name: str, seconds: float, ok: bool, detail: str) -> None:
        """A stage that a collaborator timed (warm-up, each level): it ended now."""
        ended = time.time()
        self.records.append(Stage(name=name, started=ended - seconds, ended=ended, ok=ok, detail=detail))

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        record = Stage(name=name, started=time.time(), ended=time.time())
        self.records.append(record)
        try:
            yield record
        except BaseException as exc:
            record.ok = False
            record.detail = record.detail or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.ended = time.time()


def run_trial(
    ctx: TrialContext, number: int, config: Config, *, baseline: bool = False, repeat: int = 0
) -> TrialRecord:
    """Run one config through every stage; return its record whatever happens to the engine."""
    spec = ctx.loaded.spec
    trial_dir = ctx.out_dir / f"trial-{number:03d}-{config.hash}"
    stages = _Stages()
    record = TrialRecord(
        number=number,
        config=config.as_dict(),
        config_id=config.id,
        config_hash=config.hash,
        baseline=baseline,
        outcome="failed",
        repeat=repeat,
    )
    request = launch_request(ctx.loaded, config, run_id=ctx.run_id, name=f"trial-{number:03d}", log_dir=trial_dir)
    key = engine_key(request)
    workload = _workload(spec, config)
    try:
        warm = ctx.take_warm(key, stages, record)
        if warm is not None:
            stages.add("launch", 0.0, True, f"reused the engine of trial {warm.trial} (only client settings differ)")
            record.engine_log = str(warm.deployment.log_path)
            _Engine(ctx, spec, warm.deployment, request, trial_dir, stages, record).measure_and_judge(workload)
            ctx.keep_or_stop(WarmEngine(key, warm.deployment, warm.trial), stages, record)
            return record
        for attempt in range(1, LAUNCH_ATTEMPTS + 1):
            deployment = _launch(ctx, request, stages, record)
            try:
                try:
                    with stages.stage("ready") as ready:
                        took = wait_until_ready(
                            deployment,
                            request.profile,
                            request.startup_timeout,
                            progress=lambda _s, text: ctx.progress(text),
                        )
                        ready.detail = f"ready in {took:.1f}s"
                except LaunchFailed as failure:
                    record.failure_kind = failure.kind.value
                    record.reason = f"{failure.kind.value}: {failure.message}"
                    if failure.kind is FailureKind.PORT_IN_USE and attempt < LAUNCH_ATTEMPTS and request.port is None:
                        ctx.progress("the port was taken between choosing and binding it: launching again")
                        _teardown(ctx, deployment, stages, record)
                        continue  # another process took the free port we picked: a race, not the config's fault
                    _teardown(ctx, deployment, stages, record)
                    return record
            except BaseException:
                _teardown(ctx, deployment, stages, record)
                raise
            record.failure_kind = None
            record.reason = ""
            try:
                _Engine(ctx, spec, deployment, request, trial_dir, stages, record).measure_and_judge(workload)
            except BaseException:
                _teardown(ctx, deployment, stages, record)
                raise
            ctx.keep_or_stop(WarmEngine(key, deployment, number), stages, record)
            return record
        return record
    finally:
        record.stages = stages.records


@dataclass(frozen=True)
class _Engine:
    """What the measuring stages of one trial share: the running engine, where its files go, what is recorded."""

    ctx: TrialContext
    spec: TuningSpec
    deployment: Deployment
    request: LaunchRequest
    trial_dir: Path
    stages: _Stages
    record: TrialRecord

    def measure_and_judge(self, workload: Workload) -> None:
        """Probe (a new config, when there is a best so far), then the workload's levels, then the verdict."""
        record = self.record
        target = self.ctx.incumbent if not record.baseline and record.repeat == 0 else None
        if target is not None:
            if self.probe(workload, target):
                return
            workload = workload.model_copy(update={"warmup_requests": 0})  # the probe warmed the engine up
        results = self.bench(workload)
        with self.stages.stage("judge"):
            _judge(self.spec, results, record)

    def probe(self, workload: Workload, target: Incumbent) -> bool:
        """Run the short probe; True when it dropped the config (recorded as ``skipped`` with the figures)."""
        ctx, spec, stages, record = self.ctx, self.spec, self.stages, self.record
        ctx.progress(
            f"probe: {target.requests} requests at {target.level} against the best so far "
            f"(trial {target.trial}, {target.value:.4g})"
        )
        with stages.stage("probe") as stage:
            results = ctx.bench(
                url=self.deployment.url,
                request=self.request,
                workload=probe_workload(workload, target),
                out_dir=self.trial_dir / "probe",
                on_level=lambda _key, _result: None,
                progress=ctx.progress,
                on_stage=lambda name, seconds, ok, detail: stages.add(f"probe {name}", seconds, ok, detail),
            )
            result = results.get(target.level)
            value = level_value(spec.objective[0], result, spec.slo) if isinstance(result, Measurement) else None
            why = verdict(value, target)
            stage.detail = why or (
                f"probe at {target.level}: {value:.4g}, within {target.margin:.0%} of the best so far "
                f"({target.value:.4g}): measured in full"
            )
        ctx.progress(stage.detail)
        if why is None:
            return False
        record.outcome = "skipped"
        record.reason = why
        record.objectives = [ObjectiveRecord(name=str(spec.objective[0]), value=value, level=str(target.level))]
        if result is not None:
            record.levels = [_level_record(result, judge(spec.slo, result), spec.slo)]
        return True

    def bench(self, workload: Workload) -> dict[LevelKey, LevelResult]:
        """Every level of ``workload``, ascending; stops after a level that breaks a hard SLO (early stop)."""
        ctx, spec = self.ctx, self.spec

        def on_level(_key: LevelKey, result: LevelResult) -> str | None:
            verdict = judge(spec.slo, result)
            if ctx.early_stop and not verdict.feasible:  # a hard SLO broke: higher levels cannot do better
                ctx.progress(f"hard SLO missed, no higher level is run for this config: {'; '.join(verdict.reasons)}")
                return "stop"
            return None

        with self.stages.stage("bench") as bench:
            results = ctx.bench(
                url=self.deployment.url,
                request=self.request,
                workload=workload,
                out_dir=self.trial_dir / "bench",
                on_level=on_level,
                progress=ctx.progress,
                on_stage=self.stages.add,
            )
            measured = sum(isinstance(r, Measurement) for r in results.values())
            bench.detail = f"{measured} of {len(results)} levels measured"
        return results


def _workload(spec: TuningSpec, config: Config) -> Workload:
    """The spec's workload with the config's ``request.*`` values sent with every request."""
    _flags, _env, fields = split_flags(config.as_dict())
    if not fields:
        return spec.workload
    return spec.workload.model_copy(update={"request_params": {**spec.workload.request_params, **fields}})


def engine_key(request: LaunchRequest) -> str:
    """What makes two trials' engines the same engine: everything launched, nothing sent by the client."""
    return json.dumps(
        [
            request.profile.runtime,
            request.model,
            request.served_name,
            sorted(request.flags.items()),
            sorted(request.env.items()),
            request.python,
            request.image,
            request.gpus,
            sorted(request.extra.items()),
        ],
        default=str,
    )


def _launch(ctx: TrialContext, request: LaunchRequest, stages: _Stages, record: TrialRecord) -> Deployment:
    with stages.stage("launch"):
        deployment = ctx.launcher.start(request)
    record.engine_log = str(deployment.log_path)
    return deployment


def _teardown(
    ctx: TrialContext, deployment: Deployment, stages: _Stages, record: TrialRecord, name: str = "teardown"
) -> None:
    with stages.stage(name) as teardown:
        try:
            deployment.stop(ctx.stop_grace)
        except Exception as exc:  # noqa: BLE001 - recorded apart, never changes the outcome
            record.teardown_error = f"{type(exc).__name__}: {exc}"
            teardown.ok = False
            teardown.detail = record.teardown_error


def _judge(spec: TuningSpec, results: Mapping[LevelKey, LevelResult], record: TrialRecord) -> None:
    verdicts = [judge(spec.slo, result) for result in results.values()]
    values = [evaluate(term, results, verdicts, spec.slo) for term in spec.objective]
    record.levels = [_level_record(results[v.key], v, spec.slo) for v in verdicts]
    record.objectives = [
        ObjectiveRecord(name=str(v.term), value=v.value, level=str(v.level) if v.level else None) for v in values
    ]
    if all(v.feasible for v in values):
        record.outcome = "feasible"
        record.reason = ""
    else:
        record.outcome = "infeasible"
        record.reason = _first_reason(values)


def _first_reason(values: list[ObjectiveValue]) -> str:
    for value in values:
        if value.reasons:
            extra = f" (+{len(value.reasons) - 1} more)" if len(value.reasons) > 1 else ""
            return value.reasons[0] + extra
    return "no feasible level"


def _level_record(result: LevelResult, verdict: LevelVerdict, slo: SLO) -> LevelRecord:
    checks = [
        CheckRecord(
            metric=c.metric,
            bound="max" if c.bound == "max" else "min",
            limit=c.limit,
            measured=None if c.measured != c.measured else c.measured,
            hard=c.hard,
            passed=c.passed,
            violation_rate=c.violation_rate,
        )
        for c in verdict.checks
    ]
    base = LevelRecord(
        scenario=result.key.scenario, concurrency=result.key.concurrency, feasible=verdict.feasible, checks=checks
    )
    if isinstance(result, LevelFailure):
        base.failure = result.reason
        base.requests = len(result.samples)
        base.errors = sum(1 for s in result.samples if not s.ok)
        return base
    stats: dict[str, float | None] = {}
    for metric in ("ttft", "tpot", "e2e_latency"):
        for name in STAT_NAMES:
            value = result.statistic(metric, parse_percentile(name))
            stats[f"{metric}.{name}"] = None if value != value else value
    ok = [s for s in result.samples if s.ok]
    base.requests = len(result.samples)
    base.errors = result.errors
    base.error_rate = result.error_rate
    base.run_duration = result.run_duration
    base.output_throughput = result.output_throughput
    base.total_throughput = result.total_throughput
    base.requests_per_second = result.requests_per_second
    base.stats = stats
    base.samples = SampleSet(
        ttft=[s.ttft for s in ok if s.ttft is not None],
        tpot=[s.tpot for s in ok if s.tpot is not None],
        e2e_latency=[s.e2e_latency for s in ok if s.e2e_latency is not None],
        output_tokens=[s.output_tokens for s in ok if s.output_tokens is not None],
    )
    base.intervals = level_intervals(base, slo)
    return base
