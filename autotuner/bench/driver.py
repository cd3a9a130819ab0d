"""Benchmark a deployment with genai-bench: the spec's workload, one (scenario, concurrency) level at a time.

:func:`run_workload` is the trial pipeline's ``bench`` stage. For a deployment (its URL) of an engine (its
profile) it:

1. checks the output folder is writable (genai-bench writes its log into its working directory; the original
   system died on a PermissionError there) and resolves the tokenizer (:func:`resolve_tokenizer`);
2. builds genai-bench's environment: ours, plus proxies (both letter cases) and the Hugging Face token (both
   names) from :mod:`autotuner.launch.environment`; ``ENABLE_UI=false`` always (the Rich dashboard needs a
   terminal, fills the log with escape codes, and its log handler calls ``sys.exit(1)`` on the first error
   line); ``HF_HUB_OFFLINE=1`` when the tokenizer is a local folder (the hub is then never contacted); and the
   engine's host in ``no_proxy`` when it is a loopback address and a proxy is set;
3. sends ``warmup_requests`` warm-up requests shaped like the first scenario (compilation, caches, first-request
   costs are not measured); if none succeeds, the engine does not serve and no level is run;
4. runs every level, scenarios in spec order and concurrencies ascending within each: before each level it POSTs
   the profile's cache-reset endpoint if it has one (so every level, the first one too, starts from the same cold
   prefix cache), then runs one genai-bench invocation for just that level, with a deadline, then waits until
   the engine is idle again (the requests genai-bench dropped at the end of the level are aborted) -- instead
   of genai-bench's fixed 1 s pause;
5. parses the level's files with :func:`read_experiment` and hands the result to ``on_level``, which may answer
   ``"stop"`` (the study stops a config after the first level that breaks a hard SLO); the levels not run are
   then failures saying why. A failed level whose engine no longer answers its health check ends the run too.

Output folder (everything kept; every text file masked with :class:`Masker` -- a proxy error may quote
``user:password@``)::

    driver.log                what the driver did: commands, warm-up, resets, outcomes
    genai_bench.log           genai-bench's own log (``--log-dir``), all levels
    genai-bench-worker.log    the worker's output outside benchmarks (when this run started it)
    01_D64_64_c1/             one folder per level: experiment_metadata.json, the run file (or
                              debug_for_run_*.json), console.log (genai-bench's stdout and stderr)

genai-bench options, in the order click validates them (``--api-backend`` before ``--api-key``, ``--task``
before ``--traffic-scenario``): ``--api-backend`` is the profile's (vllm/sglang send ``ignore_eos``, so outputs
have the asked length), ``--api-key dummy``, ``--server-engine`` the profile's, ``--max-time-per-run`` the
workload's ``max_time`` in whole minutes rounded up (genai-bench takes minutes), ``--additional-request-params``
the workload's ``request_params`` as JSON.

Engine knowledge used here that belongs in :class:`EngineProfile` (see the issue note): which /metrics gauges
count busy requests (``EngineProfile.endpoints.busy_gauges``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from ..engines.profile import EngineProfile
from ..launch.environment import engine_environment
from ..secrets import PROXY_VARIABLES, Masker
from ..spec.models import Workload
from . import engine_client
from .measurement import LevelFailure, LevelKey, LevelResult, Measurement
from .results import read_experiment
from .runner import GenaiBench, Invocation, Outcome, command_line, mask_file
from .tokenizer import resolve_tokenizer

STOP = "stop"
LEVEL_GRACE_WORKER = 60.0  # seconds beyond --max-time-per-run before a level counts as hung (worker)
LEVEL_GRACE_SUBPROCESS = 180.0  # plain genai-bench adds imports, Excel and plots on a possibly loaded machine


@dataclass(frozen=True)
class ProgressEvent:
    """One step of the run, for the caller's display. ``str(event)`` is the line to show.

    ``stage``: ``warmup`` (``seconds`` = its duration), ``level`` (a level starts), ``level-done`` (``seconds`` =
    the level's wall time, ``result`` set), ``running`` (every ~15 s of a level), ``note`` (worker start-up,
    fallback, cache reset problems).
    """

    stage: str
    message: str
    index: int = 0
    total: int = 0
    key: LevelKey | None = None
    seconds: float | None = None
    result: LevelResult | None = None

    def __str__(self) -> str:
        return self.message


OnLevel = Callable[[LevelKey, LevelResult], "str | None"]
OnProgress = Callable[[ProgressEvent], None]


def plan_levels(workload: Workload) -> list[LevelKey]:
    """The levels in run order: scenarios as the spec lists them, concurrencies ascending within each."""
    return [LevelKey(scenario, c) for scenario in workload.scenarios for c in sorted(workload.concurrency)]


def max_time_minutes(workload: Workload) -> int:
    """genai-bench's ``--max-time-per-run`` is an integer number of MINUTES: the workload's max_time rounded up."""
    return max(1, math.ceil(workload.max_time.total_seconds() / 60 - 1e-9))


def level_folder_name(index: int, key: LevelKey) -> str:
    """``01_D64_64_c1``: run order first, then the scenario as genai-bench sanitizes it in its file names."""
    scenario = key.scenario.replace("(", "").replace(")", "").replace(",", "_").replace("/", "_")
    return f"{index:02d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', scenario)}_c{key.concurrency}"


def genai_bench_args(
    *,
    url: str,
    profile: EngineProfile,
    served_name: str,
    tokenizer: str,
    workload: Workload,
    key: LevelKey,
    experiment_dir: Path,
    folder_name: str,
    log_dir: Path,
) -> list[str]:
    """Every option genai-bench needs for one level, in an order click accepts (see the module docstring)."""
    args = [
        "--api-backend", profile.api_backend,
        "--api-base", url.rstrip("/"),
        "--api-key", "dummy",
        "--api-model-name", served_name,
        "--model-tokenizer", tokenizer,
        "--task", workload.task,
        "--traffic-scenario", key.scenario,
        "--num-concurrency", str(key.concurrency),
        "--max-requests-per-run", str(workload.max_requests),
        "--max-time-per-run", str(max_time_minutes(workload)),
        "--server-engine", profile.server_engine,
    ]  # fmt: skip
    if workload.request_params:
        args += ["--additional-request-params", json.dumps(dict(workload.request_params))]
    args += [
        "--experiment-base-dir", str(experiment_dir),
        "--experiment-folder-name", folder_name,
        "--log-dir", str(log_dir),
    ]  # fmt: skip
    return args


def bench_environment(
    tokenizer: str, url: str, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """genai-bench's whole environment, and the additions to ours (for the log, masked)."""
    source = dict(os.environ if environ is None else environ)
    additions = engine_environment({"ENABLE_UI": "false", "TRANSFORMERS_VERBOSITY": "error"}, environ=source)
    if Path(tokenizer).is_dir():
        additions["HF_HUB_OFFLINE"] = "1"
    if engine_client.is_loopback(url):
        host = urlsplit(url).hostname or "127.0.0.1"
        present = source.get("no_proxy") or source.get("NO_PROXY") or ""
        entries = [e for e in present.split(",") if e.strip()]
        wanted = [h for h in dict.fromkeys((host, "localhost", "127.0.0.1")) if h not in entries]
        if wanted and any(source.get(p) or source.get(p.upper()) for p in PROXY_VARIABLES if p != "no_proxy"):
            additions["no_proxy"] = additions["NO_PROXY"] = ",".join([*entries, *wanted])
    return {**source, **additions}, additions


class _Journal:
    """``driver.log`` and the progress callback, both masked."""

    def __init__(self, path: Path, masker: Masker, progress: OnProgress | None) -> None:
        self.path = path
        self.masker = masker
        self.progress = progress

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"{stamp} {self.masker.mask(message)}\n")

    def emit(self, event: ProgressEvent) -> None:
        event = replace(event, message=self.masker.mask(event.message))
        self.log(event.message)
        if self.progress is not None:
            self.progress(event)


def _masker(env: Mapping[str, str]) -> Masker:
    """Secrets of the child's environment, also as they appear inside JSON strings (escaped)."""
    base = Masker.from_environ(env)
    escaped = {json.dumps(s)[1:-1] for s in base.secrets}
    return Masker(frozenset(base.secrets | escaped))


def _describe(result: LevelResult) -> str:
    if isinstance(result, Measurement):
        return (
            f"{len(result.samples)} requests, {result.errors} failed, "
            f"{result.output_throughput:.1f} output tok/s over {result.run_duration:.1f} s"
        )
    return f"failed: {result.reason}"


def run_workload(
    url: str,
    profile: EngineProfile,
    served_name: str,
    tokenizer: str,
    workload: Workload,
    output: Path,
    *,
    on_level: OnLevel | None = None,
    progress: OnProgress | None = None,
    bench: GenaiBench | None = None,
    environ: Mapping[str, str] | None = None,
    warmup_timeout: float | None = None,
) -> dict[LevelKey, LevelResult]:
    """Benchmark the engine at ``url`` with every level of ``workload``; one result per level, in run order.

    ``tokenizer``: a local tokenizer folder, a GGUF, ``builtin:<name>`` or a Hugging Face id (resolved with
    :func:`resolve_tokenizer`). ``output``: the folder for everything kept (see the module docstring).
    ``on_level(key, result)`` is called after each level; returning ``"stop"`` ends the run (later levels are
    failures "not run"). ``progress`` receives :class:`ProgressEvent` s. ``bench`` is a :class:`GenaiBench` to
    reuse (its worker survives this call: keep one per study); by default one is made and closed here.
    ``environ`` replaces ``os.environ`` as the base of genai-bench's environment. ``warmup_timeout`` bounds each
    warm-up request (default: the workload's max_time, at least 30 s).

    Raises :class:`~autotuner.bench.runner.BenchError` when genai-bench cannot be run at all, ``OSError`` when
    ``output`` is not writable, ``ValueError`` for a workload genai-bench would stop to ask about.
    """
    if workload.request_params.get("ignore_eos") is False:
        raise ValueError(
            "request_params.ignore_eos: false makes genai-bench ask for confirmation on its terminal (and outputs "
            "end early, so token counts vary); remove it"
        )
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    probe = output / ".writable"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"genai-bench's output folder {output} is not writable: {exc}") from None
    tokenizer = resolve_tokenizer(tokenizer, None)
    env, additions = bench_environment(tokenizer, url, environ)
    masker = _masker(env)
    runner = GenaiBench() if bench is None else bench
    session = _Session(
        url,
        profile,
        served_name,
        tokenizer,
        workload,
        output,
        env,
        runner,
        _Journal(output / "driver.log", masker, progress),
    )
    levels = plan_levels(workload)
    try:
        runner.start(env, session.worker_log)  # its imports overlap the warm-up
        session.journal.log(f"environment additions: {', '.join(f'{k}={v}' for k, v in sorted(additions.items()))}")
        session.journal.log(
            f"tokenizer: {tokenizer}; genai-bench: {runner.mode}; levels: {', '.join(map(str, levels))}"
        )
        problem = session.warm_up(warmup_timeout)
        if problem is not None:
            return {key: LevelFailure(key, masker.mask(problem)) for key in levels}
        return session.run_levels(levels, on_level)
    finally:
        if bench is None:
            runner.close()
        for path in (output / "genai_bench.log", session.worker_log):
            mask_file(path, masker)


@dataclass
class _Session:
    """One run of :func:`run_workload`: what every step needs."""

    url: str
    profile: EngineProfile
    served_name: str
    tokenizer: str
    workload: Workload
    output: Path
    env: Mapping[str, str]
    runner: GenaiBench
    journal: _Journal

    @property
    def worker_log(self) -> Path:
        return self.output / "genai-bench-worker.log"

    def warm_up(self, timeout: float | None) -> str | None:
        """Send the warm-up requests; the reason no level can run when none succeeded, else None."""
        workload, count = self.workload, self.workload.warmup_requests
        shape = engine_client.scenario_shape(workload.scenarios[0])
        if count == 0:
            return None
        if workload.task != "text-to-text" or shape is None:
            self.journal.emit(ProgressEvent("note", "warm-up skipped: only text-to-text scenarios are warmed up here"))
            return None
        concurrency = min(count, max(workload.concurrency))
        self.journal.emit(
            ProgressEvent(
                "note",
                f"warm-up: {count} request(s) shaped like {workload.scenarios[0]} "
                f"(~{shape[0]} tokens in, {shape[1]} out), {concurrency} at a time",
            )
        )
        report = engine_client.warm_up(
            self.url,
            self.served_name,
            shape,
            count,
            concurrency=concurrency,
            ignore_eos=self.profile.api_backend in ("vllm", "sglang"),  # as genai-bench's backend sends it
            params=workload.request_params,
            timeout=timeout if timeout is not None else max(30.0, workload.max_time.total_seconds()),
        )
        ok = report.requests - len(report.failures)
        detail = f"; first failure: {report.failures[0]}" if report.failures else ""
        message = f"warm-up: {ok} of {report.requests} succeeded in {report.seconds:.1f} s{detail}"
        self.journal.emit(ProgressEvent("warmup", message, seconds=report.seconds))
        return f"not run: no warm-up request succeeded ({report.failures[0]})" if ok == 0 else None

    def run_levels(self, levels: list[LevelKey], on_level: OnLevel | None) -> dict[LevelKey, LevelResult]:
        endpoints, total = self.profile.endpoints, len(levels)
        results: dict[LevelKey, LevelResult] = {}
        reset_failures = 0
        for index, key in enumerate(levels, start=1):
            label = f"level {index} of {total}: {key.scenario} at concurrency {key.concurrency}"
            if endpoints.cache_reset:
                reset, message = engine_client.reset_cache(self.url, endpoints.cache_reset)
                if reset or reset_failures:
                    self.journal.log(message)
                else:  # said once: the levels run with whatever the engine has cached
                    self.journal.emit(ProgressEvent("note", f"{message}; levels run without a cache reset"))
                reset_failures += not reset
            self.journal.emit(ProgressEvent("level", label, index, total, key))
            result, seconds = self.run_level(index, key, label)
            results[key] = result
            # genai-bench dropped the requests in flight when it stopped: let the engine abort them before the
            # next level (or before it is stopped: llama.cpp takes ~0.6 s longer to stop with streams in flight).
            self.journal.log(
                engine_client.wait_idle(self.url, endpoints.metrics, timeout=5.0, gauges=endpoints.busy_gauges)
            )
            done = f"{label}: {_describe(result)}"
            self.journal.emit(ProgressEvent("level-done", done, index, total, key, seconds, result))
            rest = levels[index:]
            if on_level is not None and on_level(key, result) == STOP:
                reason = f"not run: stopped after level {key} ({index} of {total}) by the caller"
            elif isinstance(result, LevelFailure) and not engine_client.healthy(self.url, endpoints.health):
                reason = f"not run: the engine stopped answering {endpoints.health} after level {key} failed"
            else:
                continue
            results.update((later, LevelFailure(later, reason)) for later in rest)
            if rest:
                self.journal.log(f"{reason}: {', '.join(map(str, rest))}")
            break
        return results

    def run_level(self, index: int, key: LevelKey, label: str) -> tuple[LevelResult, float]:
        """One genai-bench invocation for one level; its result (masked) and wall time."""
        folder_name = level_folder_name(index, key)
        folder = self.output / folder_name
        if folder.exists():
            shutil.rmtree(folder)  # an earlier run's files would be read as this level's result
        args = genai_bench_args(
            url=self.url,
            profile=self.profile,
            served_name=self.served_name,
            tokenizer=self.tokenizer,
            workload=self.workload,
            key=key,
            experiment_dir=self.output,
            folder_name=folder_name,
            log_dir=self.output,
        )
        limit = max_time_minutes(self.workload) * 60
        grace = LEVEL_GRACE_WORKER if self.runner.mode == "worker" else LEVEL_GRACE_SUBPROCESS
        self.journal.log(f"$ {command_line(args)}")
        last_beat = [0.0]

        def heartbeat(elapsed: float) -> None:
            if elapsed - last_beat[0] >= 15:
                last_beat[0] = elapsed
                message = f"{label}: running ({elapsed:.0f} s, limit {limit} s)"
                self.journal.emit(ProgressEvent("running", message, index, key=key))

        outcome = self.runner.run(
            Invocation(tuple(args), self.output, folder / "console.log", self.env, limit + grace),
            worker_log=self.worker_log,
            heartbeat=heartbeat,
            note=lambda message: self.journal.emit(ProgressEvent("note", message)),
        )
        error = f": {outcome.error}" if outcome.error else ""
        self.journal.log(f"genai-bench ({outcome.mode}) exit {outcome.status} in {outcome.seconds:.2f} s{error}")
        kept = [p for p in folder.glob("*") if p.is_file()] if folder.is_dir() else []
        for path in (*kept, self.output / "genai_bench.log"):  # masked now: a killed run leaves nothing unmasked
            mask_file(path, self.journal.masker)
        result = read_experiment(folder, [key])[key] if folder.is_dir() else LevelFailure(key, "no output folder")
        if isinstance(result, LevelFailure):
            result = replace(result, reason=self.journal.masker.mask(_failure_reason(result, outcome, folder)))
        return result, outcome.seconds


def _failure_reason(result: LevelFailure, outcome: Outcome, folder: Path) -> str:
    """A LevelFailure's reason, made specific when genai-bench itself failed or hung (no run file at all)."""
    if result.samples or outcome.status == 0:
        return result.reason  # genai-bench's debug file, or a level where no request finished in time
    console = folder / "console.log"
    tail = ""
    if console.is_file():
        lines = [line for line in console.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        tail = f"; last output: {' | '.join(lines[-3:])[-400:]}" if lines else ""
    if outcome.timed_out:
        return f"genai-bench {outcome.error} and was stopped (a hung engine or genai-bench){tail}"
    return f"genai-bench failed (exit {outcome.status}): {outcome.error or 'no message'}{tail}"
