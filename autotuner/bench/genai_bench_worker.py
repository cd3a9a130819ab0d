"""A long-lived genai-bench process: import genai-bench once, then run one benchmark per request.

Why: every ``genai-bench benchmark`` invocation spends about 13 s outside the load on a CPU machine -- ~4 s of
imports, an Excel workbook and ~9 PNG plots at the end, a fixed ``gevent.sleep(1)`` after each level and
``gevent.sleep(2)`` at the end. The driver runs one level per invocation (so it can warm up, reset the engine's
cache and stop early between levels), which would pay that cost for every level. This worker pays the import once
and drops the costs that do not change what is measured.

It is run BY FILE PATH with the interpreter that has genai-bench (``python genai_bench_worker.py``), never imported
by the tuner: importing genai_bench runs ``gevent.monkey.patch_all()``, which rewires threads, sockets and
subprocesses of the whole process. So this module uses the standard library at module level and imports
genai-bench inside :func:`main`; the patches below affect only this process.

Protocol (one JSON object per line; file descriptors are rearranged so genai-bench's own printing can never
corrupt it):

- start-up: the worker writes ``{"ready": true, "genai_bench": "0.0.5", "pid": ..., "import_seconds": ...}``,
  or ``{"ready": false, "error": "..."}`` when genai-bench is missing or a patched name no longer exists (a
  genai-bench upgrade that renamed something fails loudly here; the driver then falls back to plain
  ``genai-bench benchmark`` subprocesses and says so).
- request: ``{"args": [...], "cwd": "/run/dir", "console": "/run/dir/console.log"}``: ``args`` are the
  ``genai-bench benchmark`` options exactly as on its command line; genai-bench runs with ``cwd`` as its working
  directory and its stdout/stderr appended to ``console``.
- reply: ``{"status": 0, "error": null, "seconds": ...}``; ``status`` is what the CLI would have exited with
  (1 for an exception such as genai-bench's "Please check out debug_for_run_..." error, 2 for a usage error).
  After a failed benchmark the worker exits: genai-bench skipped its own clean-up on that path (load-test
  greenlets may still be alive), and a fresh process is cheaper to trust than a half torn-down one.
- end: end of input (the driver closes stdin) ends the worker.

What is patched (module attributes of ``genai_bench.cli.cli``, the module whose globals ``benchmark`` reads),
and why each leaves the measurement unchanged:

- ``create_workbook``, ``load_one_experiment``, ``plot_experiment_data_flexible`` and
  ``plot_single_scenario_inference_speed_vs_throughput``: the report stage after the load (Excel, plots). They
  read the run files back and draw them; the run files are written before them and are all the driver reads.
- ``gevent``: replaced by a proxy whose ``sleep`` only yields (``gevent.sleep(0)``). ``benchmark`` uses gevent
  for nothing else than ``gevent.sleep(1)`` after each level ("for server to clear aborted requests") and
  ``gevent.sleep(2)`` at the end (to let the live dashboard be seen). The driver runs one level per call and
  itself waits until the engine is idle (and resets its cache) before the next level.
- ``manage_run_time``: the same loop (stop at ``max_time_per_run`` seconds or once ``max_requests_per_run``
  requests finished, failed ones included), polled every :data:`POLL_SECONDS` instead of every second. See its
  docstring for exactly what changes in the numbers.
- ``validate_tokenizer``: memoized, so the tokenizer is loaded once per worker rather than once per level (the
  same object, used read-only by the sampler: same prompts, same token counts).

Nothing else changes: the same command-line parsing, sampler, tokenizer, load generator, aggregation and run-file
format as ``genai-bench benchmark``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

POLL_SECONDS = 0.05
"""How often the patched ``manage_run_time`` checks its stop conditions (genai-bench: 1 s).

``AUTOTUNER_GENAI_BENCH_POLL`` (seconds) overrides it; ``1`` gives genai-bench's own clock back, e.g. to compare
with numbers recorded by an unpatched genai-bench."""

# (module, attribute) pairs the worker replaces; checked at start-up so a rename fails loudly.
PATCHED = (
    ("genai_bench.cli.cli", "create_workbook"),
    ("genai_bench.cli.cli", "load_one_experiment"),
    ("genai_bench.cli.cli", "plot_experiment_data_flexible"),
    ("genai_bench.cli.cli", "plot_single_scenario_inference_speed_vs_throughput"),
    ("genai_bench.cli.cli", "gevent"),
    ("genai_bench.cli.cli", "manage_run_time"),
    ("genai_bench.cli.cli", "validate_tokenizer"),
)
MANAGE_RUN_TIME_PARAMETERS = ("max_time_per_run", "max_requests_per_run", "environment")


class PatchError(RuntimeError):
    """genai-bench no longer has what the worker patches: run it unpatched (plain subprocesses) instead."""


def _skipped(*_args: Any, **_kwargs: Any) -> None:
    """The report stage (Excel workbook, plots): not needed, the driver reads the run files."""
    return None


def _skipped_load(*_args: Any, **_kwargs: Any) -> tuple[None, None]:
    """``load_one_experiment`` only feeds the workbook and plots, which are skipped."""
    return None, None


class _NoPauseGevent:
    """``gevent`` as ``benchmark`` sees it: everything delegated, except that ``sleep`` only yields."""

    def __init__(self, gevent: Any) -> None:
        self._gevent = gevent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gevent, name)

    def sleep(self, seconds: float = 0, ref: bool = True) -> None:
        self._gevent.sleep(0)


def make_manage_run_time(gevent: Any, logger: Any, poll: float = POLL_SECONDS) -> Callable[..., int]:
    """genai-bench's ``manage_run_time`` with a finer clock.

    genai-bench sleeps 1 s, then checks ``environment.runner.stats.total.num_requests`` (finished requests, failed
    ones included) against ``max_requests_per_run`` and the elapsed ticks against ``max_time_per_run``. This does
    the same every ``poll`` seconds of real (monotonic) time. What changes in the numbers:

    - the level stops within ``poll`` seconds of the request that reached ``max_requests_per_run`` instead of at
      the next whole second, so ``run_duration`` (start to after ``runner.stop()``) is the time the requests took
      plus at most ``poll`` seconds, not rounded up to the second; genai-bench's throughputs (tokens /
      run_duration) lose the idle tail that made them move in whole-second steps;
    - ``num_requests`` is ``max_requests_per_run`` exactly, unless several requests finished within one ``poll``
      interval (then those extra ones are kept too, as genai-bench keeps the ones of its whole second);
    - the requests in flight at the stop, which genai-bench drops (their greenlets are killed and never recorded),
      are those started since the last completion rather than during up to a second after it: less aborted work
      for the engine, no difference in the recorded samples;
    - the returned run time (used only in the run file's name, ``..._time_<secs>s.json``, which the parser
      matches with ``\\d+``) is the elapsed time rounded to whole seconds, as genai-bench's count of ticks was.

    The time limit is unchanged (``max_time_per_run`` seconds, genai-bench's minutes * 60), and so are the
    samples: each is the same request, timed by the same code.

    Evidence (2-CPU machine; ``run_duration`` minus the requests' busy time, which at concurrency 1 is the sum of
    their e2e latencies): llama.cpp + SmolLM2, D(64,64), 12 requests per level -- 1 s clock: +0.25 to +1.0 s
    (4-15 % of a 6-8 s level; at concurrency 4 genai-bench reported 109.5 tok/s where 50 ms polling reported
    126-130 tok/s for the same per-request latencies); 50 ms: +0.02 to +0.07 s. The sim at ~0.25 s per request,
    concurrency 1, 12 requests asked: 15-16 recorded with the 1 s clock, 12 with 50 ms; p50 e2e 0.254 s in both.
    """

    def manage_run_time(max_time_per_run: int, max_requests_per_run: int, environment: Any) -> int:
        started = time.monotonic()
        elapsed = 0.0
        while elapsed < max_time_per_run:
            gevent.sleep(poll)
            elapsed = time.monotonic() - started
            runner = environment.runner
            assert runner is not None, "environment.runner should not be None"
            finished = runner.stats.total.num_requests
            if finished >= max_requests_per_run:
                logger.info(f"⏩ Exit the run as {finished} requests have been completed.")
                break
        return max(1, round(elapsed))

    return manage_run_time


def _memoized_tokenizer(load: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``validate_tokenizer`` loading each tokenizer once per worker (0.2-0.4 s for SmolLM2's 49k-token vocabulary,
    per level). The sampler only calls ``encode``/``decode``/``apply_chat_template`` on it, so sharing it between
    runs changes nothing. A local folder is keyed by its files' sizes and times too: a rebuilt one is reloaded."""
    cache: dict[tuple[Any, ...], Any] = {}

    def validate_tokenizer(model_tokenizer: Any) -> Any:
        key: tuple[Any, ...] = (model_tokenizer,)
        if isinstance(model_tokenizer, str) and os.path.isdir(model_tokenizer):
            with os.scandir(model_tokenizer) as entries:
                key += tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file()))
        if key not in cache:
            cache.clear()  # one tokenizer at a time is all a worker needs
            cache[key] = load(model_tokenizer)
        return cache[key]

    return validate_tokenizer


def install_patches(poll: float = POLL_SECONDS) -> Any:
    """Check that every patched name exists (and ``manage_run_time`` keeps its parameters), then patch.

    Returns the ``benchmark`` click command. Raises :class:`PatchError` naming what is missing.
    """
    import importlib
    import inspect

    import gevent

    missing = [f"{module}.{name}" for module, name in PATCHED if not hasattr(importlib.import_module(module), name)]
    if missing:
        raise PatchError(f"genai-bench no longer has {', '.join(missing)}: cannot patch it (see {__file__})")
    cli = importlib.import_module("genai_bench.cli.cli")
    if cli.gevent is not gevent:
        raise PatchError("genai_bench.cli.cli.gevent is not the gevent module: cannot remove its fixed pauses")
    parameters = tuple(inspect.signature(cli.manage_run_time).parameters)
    if parameters != MANAGE_RUN_TIME_PARAMETERS:
        raise PatchError(
            f"genai_bench.cli.cli.manage_run_time now takes {parameters}, not {MANAGE_RUN_TIME_PARAMETERS}"
        )
    command = getattr(cli, "benchmark", None)
    if command is None or not hasattr(command, "main"):
        raise PatchError("genai_bench.cli.cli.benchmark is not a click command")

    logger = importlib.import_module("genai_bench.cli.utils").logger
    replacements: dict[str, Any] = {
        "create_workbook": _skipped,
        "load_one_experiment": _skipped_load,
        "plot_experiment_data_flexible": _skipped,
        "plot_single_scenario_inference_speed_vs_throughput": _skipped,
        "gevent": _NoPauseGevent(gevent),
        "manage_run_time": make_manage_run_time(gevent, logger, poll),
        "validate_tokenizer": _memoized_tokenizer(cli.validate_tokenizer),
    }
    assert set(replacements) == {name for _, name in PATCHED}, "PATCHED and the replacements disagree"
    for name, value in replacements.items():
        setattr(cli, name, value)
    return command


def _reset_logging() -> None:
    """genai-bench configures logging with ``basicConfig``, which does nothing once the root logger has handlers:
    without this every later run would keep writing to the first run's ``--log-dir``."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        try:
            handler.close()
        except Exception:  # noqa: BLE001 - a handler that cannot close must not fail the next benchmark
            pass


class _Redirected:
    """Point file descriptors 1 and 2 at ``path`` for the duration of one benchmark (genai-bench prints there)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.saved: list[int] = []

    def __enter__(self) -> _Redirected:
        sys.stdout.flush()
        sys.stderr.flush()
        target = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.saved = [os.dup(1), os.dup(2)]
            os.dup2(target, 1)
            os.dup2(target, 2)
        finally:
            os.close(target)
        return self

    def __exit__(self, *_exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)


def run_one(command: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Run one ``genai-bench benchmark`` with the request's arguments; never raises."""
    started = time.monotonic()
    previous_cwd = os.getcwd()
    try:
        args = [str(a) for a in request["args"]]
        console = str(request.get("console") or os.devnull)
        os.chdir(request.get("cwd") or previous_cwd)
        _reset_logging()
        sys.argv = ["genai-bench", "benchmark", *args]  # genai-bench records sys.argv[0] in its metadata
        with _Redirected(console):
            status, error = _benchmark(command, args)
    except Exception as exc:  # noqa: BLE001 - a bad request (no such cwd, unwritable console) is a reply too
        status, error = 2, f"{type(exc).__name__}: {exc}"
    finally:
        _reset_logging()
        os.chdir(previous_cwd)
        gc.collect()  # each run leaves a cycle holding a multiprocessing.Queue (two pipe ends) and a locust runner
    return {"status": status, "error": error, "seconds": round(time.monotonic() - started, 3)}


def _benchmark(command: Any, args: list[str]) -> tuple[int, str | None]:
    """The click command in-process, its outcomes mapped to what ``genai-bench benchmark`` would exit with."""
    import click

    try:
        result = command.main(args=args, prog_name="genai-bench benchmark", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code, None
    except click.exceptions.Abort:
        return 1, "genai-bench asked for input (a required option is missing?) and was aborted"
    except click.ClickException as exc:
        return exc.exit_code, exc.format_message()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        return code, None if code == 0 else f"genai-bench exited with {exc.code!r}"
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the driver, not raised
        traceback.print_exc()
        return 1, f"{type(exc).__name__}: {exc}"
    return (result if isinstance(result, int) else 0), None


def _reply(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the tuner that started it dies (even by SIGKILL): no orphan."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker still exits when its stdin closes


def main(argv: Sequence[str] | None = None) -> int:
    _die_with_parent()
    # The protocol gets private copies of stdin/stdout; fds 0 and 1 then point at /dev/null and stderr, so a
    # prompt cannot eat a request line and a print cannot corrupt a reply.
    requests_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)

    os.environ.setdefault("ENABLE_UI", "false")  # the Rich dashboard needs a terminal; its error handler exits
    started = time.monotonic()
    try:
        import genai_bench  # noqa: F401 - runs gevent.monkey.patch_all(), first, as genai-bench's CLI does
        from genai_bench.version import __version__

        command = install_patches(float(os.environ.get("AUTOTUNER_GENAI_BENCH_POLL") or POLL_SECONDS))
        gc.collect()
        gc.freeze()  # the imported modules never die: later collections (one per run) skip them, ~0.2 s -> ~0
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which falls back to subprocesses
        traceback.print_exc()
        _reply(replies, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 3
    _reply(
        replies,
        {
            "ready": True,
            "genai_bench": __version__,
            "pid": os.getpid(),
            "import_seconds": round(time.monotonic() - started, 3),
        },
    )
    for line in requests_in:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            _reply(replies, {"status": 2, "error": f"invalid request line: {exc}", "seconds": 0.0})
            continue
        reply = run_one(command, request)
        _reply(replies, reply)
        if reply["status"] != 0:
            return 0  # see the module docstring: a failed run leaves state a fresh process does not have
    return 0


if __name__ == "__main__":
    # Run by path, this file's folder (autotuner/bench) comes first on sys.path, and its modules could shadow
    # top-level modules that genai-bench's dependencies import.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    sys.exit(main())
