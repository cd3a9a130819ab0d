"""A command line for llama.cpp's server as embedded in the ``xllamacpp`` wheel.

Why it exists: ``xllamacpp`` ships llama.cpp's HTTP server (OpenAI-compatible ``/v1/...``, ``/health``,
``/metrics``) but no executable. A process builds an ``xllamacpp.CommonParams`` and keeps an
``xllamacpp.Server(params)`` alive, which serves from native threads. This module is that process, so the tool
launches the embedded default engine like any other engine, as an argument list in a process or a container::

    python -m autotuner.engines.llamacpp_server --model PATH --host 127.0.0.1 --port 8123 --n-parallel 4 --threads 2

Flags
-----
:func:`build_parser` is the engine's own flag vocabulary; it imports nothing heavy, so spec validation can use it
cheaply. Primary names are the ``CommonParams`` fields with hyphens (``--n-parallel``, ``--n-batch``); the
spellings of llama.cpp's ``llama-server`` are aliases (``-np``/``--parallel``, ``-b``/``--batch-size``, ...) so its
command lines can be pasted. A flag that is not given keeps the engine's own default, with one exception:
``--metrics`` is on unless ``--no-metrics`` is given, because the tool reads ``/metrics``.

Contract (the launcher captures stdout and stderr to one log; other modules grep these strings)
-----------------------------------------------------------------------------------------------
- Ready: one stdout line starting with ``llamacpp_server: ready`` (:data:`READY_PREFIX`), printed once the model
  is loaded; from then on ``GET /health`` answers 200.
- Exit 0: stopped by SIGTERM or SIGINT. The server is stopped first (0.1 s idle, under a second with streams in
  flight); no traceback.
- Exit 2: invalid argument. argparse's ``error: argument --n-parallel/-np/--parallel: ...`` or
  ``error: unrecognized arguments: ...``, naming the flag.
- Exit 3: ``llamacpp_server: error: model not found: PATH`` (:data:`MODEL_NOT_FOUND`).
- Exit 4: ``llamacpp_server: error: address already in use: HOST:PORT`` (:data:`ADDRESS_IN_USE`).
- Exit 5: ``llamacpp_server: error: out of memory: <llama.cpp's allocation error>`` (:data:`OUT_OF_MEMORY`), when
  llama.cpp fails to allocate the weights or the KV cache (e.g. an ``--n-ctx`` too large for the RAM). A process
  killed by the kernel's OOM killer cannot say so: its launcher sees signal 9 instead.
- Exit 1: any other failure to start: ``llamacpp_server: error: engine failed to start: <first error line>``, or
  ``llamacpp_server: error: cannot listen on HOST:PORT: <reason>`` (address not local, unknown host).

Every error is one line on stderr starting with ``llamacpp_server: error: ``.

Two consequences of how xllamacpp works:

- ``xllamacpp.Server(params)`` holds the GIL until the model is loaded, and the reason a start failed exists only
  in llama.cpp's log (the Python exception always says "Failed to init server, please check the input params.").
  So during the load the native log (file descriptor 2) goes to an in-memory file, which is classified and then
  replayed to stderr: those lines appear when the load ends (about a second for a small model), not as it goes.
  A pipe read by a Python thread would not work: the thread cannot run during the load and a full pipe would block
  the engine.
- SIGTERM and SIGINT are blocked and awaited with ``sigwait``: xllamacpp installs no signal handler, and a signal
  that arrives during the load is acted on as soon as the load ends. Only a signal in the interpreter's first
  ~50 ms, before ``main`` runs, still ends the process the default way (killed by the signal).
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROG = "llamacpp_server"
READY_PREFIX = f"{PROG}: ready"
ERROR_PREFIX = f"{PROG}: error: "

MODEL_NOT_FOUND = "model not found"
ADDRESS_IN_USE = "address already in use"
OUT_OF_MEMORY = "out of memory"

EXIT_STOPPED = 0
EXIT_START_FAILED = 1
EXIT_USAGE = 2  # argparse's own code
EXIT_MODEL_NOT_FOUND = 3
EXIT_ADDRESS_IN_USE = 4
EXIT_OUT_OF_MEMORY = 5

# llama-server's KV cache types (common/arg.cpp ``kv_cache_types``); each starts and serves with this wheel.
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
# Our spellings and llama-server's (on/off) -> the ``llama_flash_attn_type`` member suffix.
FLASH_ATTN_MODES = {"auto": "AUTO", "enabled": "ENABLED", "on": "ENABLED", "disabled": "DISABLED", "off": "DISABLED"}
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})

# Flags whose argparse dest is also the CommonParams field name and whose value is set as is.
_SAME_NAME_FIELDS = (
    "n_ctx",
    "n_parallel",
    "n_batch",
    "n_ubatch",
    "cont_batching",
    "cache_prompt",
    "n_cache_reuse",
    "kv_unified",
    "n_threads_http",
)

# Substrings of llama.cpp log lines that name the cause of a failed start.
_OOM_MARKERS = ("failed to allocate", "insufficient memory", "out of memory", "cannot allocate memory")
_BIND_MARKERS = ("couldn't bind",)
_MISSING_FILE_MARKERS = ("failed to open gguf file",)
# llama.cpp's log line: "0.00.005.088 E gguf_init_from_file: failed to open ..." (time, level, message).
_ERROR_LINE = re.compile(r"^\d+\.\d+\.\d+\.\d+ E (?P<message>.*\S)")
# The native logger writes from its own thread; give it this long to finish before fd 2 is switched back.
_LOG_DRAIN_SECONDS = 0.1


@dataclass(frozen=True)
class StartFailure:
    """Why the engine did not start: a one-line message carrying a documented phrase, and the exit code."""

    message: str
    exit_code: int


class StartError(Exception):
    """Raised by the start-up steps; ``main`` turns it into the error line and the exit code."""

    def __init__(self, failure: StartFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


# --- flags -----------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The engine's flag vocabulary. Imports nothing beyond the standard library, so validating a spec is cheap.

    ``allow_abbrev`` is off: a misspelt flag must be an error, not silently completed to another one.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m autotuner.engines.{PROG}",
        description="Serve a GGUF model with llama.cpp's server embedded in the xllamacpp wheel.",
        epilog="Flags that are not given keep the engine's defaults (except --metrics, on by default).",
        allow_abbrev=False,
    )
    _add_server_flags(parser.add_argument_group("server"))
    _add_batching_flags(parser.add_argument_group("slots and batching"))
    _add_cpu_flags(parser.add_argument_group("CPU threads"))
    _add_cache_flags(parser.add_argument_group("attention and KV cache"))
    return parser


def _add_server_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--model", "-m", required=True, type=Path, help="GGUF file to serve (model.path)")
    group.add_argument("--host", default="127.0.0.1", help="address to listen on (hostnames; default: %(default)s)")
    group.add_argument("--port", type=_port, default=8080, help="TCP port, 0 = any free one (default: %(default)s)")
    group.add_argument(
        "--alias",
        "-a",
        type=_aliases,
        help="served model name(s), comma-separated (model_alias; default: the model path as given)",
    )
    group.add_argument(
        "--metrics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve Prometheus /metrics (endpoint_metrics; default: on)",
    )
    group.add_argument(
        "--n-threads-http", "--threads-http", type=int, help="threads for HTTP requests, -1 = auto (n_threads_http)"
    )
    group.add_argument("--seed", "-s", type=_seed, help="default sampling seed, -1 = random (sampling.seed)")


def _add_batching_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--n-ctx",
        "-c",
        "--ctx-size",
        type=_int_at_least(0),
        help="KV cache tokens shared by the slots (each gets n_ctx / n_parallel unless --kv-unified); "
        "0 = every slot gets the model's training context (n_ctx)",
    )
    group.add_argument(
        "--n-parallel", "-np", "--parallel", type=_slots, help="slots (parallel sequences); -1 = auto (n_parallel)"
    )
    group.add_argument(
        "--n-batch", "-b", "--batch-size", type=_int_at_least(1), help="logical batch size in tokens (n_batch)"
    )
    group.add_argument(
        "--n-ubatch", "-ub", "--ubatch-size", type=_int_at_least(1), help="physical batch size in tokens (n_ubatch)"
    )
    _add_switch(group, "cont_batching", "--cont-batching", "-cb", "-nocb", "continuous batching (cont_batching)")


def _add_cpu_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--threads", "-t", type=int, help="threads for generation; <= 0 = auto (cpuparams.n_threads)")
    group.add_argument(
        "--threads-batch",
        "-tb",
        type=int,
        help="threads for prompt processing; <= 0 = auto; default: as --threads (cpuparams_batch.n_threads)",
    )
    group.add_argument(
        "--poll",
        type=_int_between(0, 100),
        help="busy-wait level 0-100 while waiting for work (cpuparams.poll; also prompt processing unless "
        "--threads-batch is given, as in llama-server)",
    )


def _add_cache_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--flash-attn", "-fa", choices=tuple(FLASH_ATTN_MODES), help="flash attention (flash_attn_type)")
    group.add_argument("--cache-type-k", "-ctk", choices=CACHE_TYPES, help="K cache data type (cache_type_k)")
    group.add_argument(
        "--cache-type-v",
        "-ctv",
        choices=CACHE_TYPES,
        help="V cache data type (cache_type_v); quantized needs flash attention",
    )
    group.add_argument(
        "--cache-prompt",
        action=argparse.BooleanOptionalAction,
        help="reuse the KV cache of a slot's previous prompt (cache_prompt)",
    )
    group.add_argument(
        "--n-cache-reuse",
        "--cache-reuse",
        type=_int_at_least(0),
        help="min chunk size to reuse from the cache via KV shifting, 0 = off (n_cache_reuse)",
    )
    _add_switch(
        group, "kv_unified", "--kv-unified", "-kvu", "-no-kvu", "one KV buffer shared by all slots (kv_unified)"
    )


def _add_switch(group: argparse._ArgumentGroup, dest: str, name: str, short: str, short_off: str, text: str) -> None:
    """``--x/--no-x`` plus llama-server's short ``-x``/``-nox`` spellings, all on one dest."""
    group.add_argument(name, short, dest=dest, action=argparse.BooleanOptionalAction, help=text)
    group.add_argument(short_off, dest=dest, action="store_false", help=f"same as --no-{name[2:]}")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value: 'x'"
    return parse


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


_port = _int_between(0, 65535)
_seed = _int_between(-1, 2**32 - 1)


def _slots(text: str) -> int:
    """-1 lets the server choose (4 slots and a unified KV cache); 0 slots cannot serve."""
    value = int(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"must be -1 (auto) or >= 1, got {value}")
    return value


_slots.__name__ = "int"


def _aliases(text: str) -> list[str]:
    """Comma-separated names, stripped, as llama-server's ``--alias`` reads them."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("needs at least one name")
    return names


# --- CommonParams ----------------------------------------------------------------------------------------------


def build_params(args: argparse.Namespace, xllamacpp: Any) -> Any:
    """The ``CommonParams`` for parsed flags. ``xllamacpp`` is passed in so this module imports it only in ``main``."""
    params = xllamacpp.CommonParams()
    params.model.path = str(args.model)
    params.hostnames = [args.host]
    params.port = args.port
    params.endpoint_metrics = args.metrics
    for name in _SAME_NAME_FIELDS:
        value = getattr(args, name)
        if value is not None:
            setattr(params, name, value)
    if args.alias is not None:
        params.model_alias = set(args.alias)
    if args.threads is not None:
        params.cpuparams.n_threads = _auto_threads(args.threads)
    if args.threads_batch is not None:
        params.cpuparams_batch.n_threads = _auto_threads(args.threads_batch)
    if args.poll is not None:
        params.cpuparams.poll = args.poll
    if args.flash_attn is not None:
        params.flash_attn_type = xllamacpp.llama_flash_attn_type[
            f"LLAMA_FLASH_ATTN_TYPE_{FLASH_ATTN_MODES[args.flash_attn]}"
        ]
    if args.cache_type_k is not None:
        params.cache_type_k = xllamacpp.ggml_type[f"GGML_TYPE_{args.cache_type_k.upper()}"]
    if args.cache_type_v is not None:
        params.cache_type_v = xllamacpp.ggml_type[f"GGML_TYPE_{args.cache_type_v.upper()}"]
    if args.seed is not None:
        params.sampling.seed = xllamacpp.LLAMA_DEFAULT_SEED if args.seed == -1 else args.seed
    return params


def _auto_threads(count: int) -> int:
    """llama-server reads <= 0 as "all cores"; xllamacpp resolves -1 to the math cores when the server starts."""
    return count if count > 0 else -1


# --- start-up --------------------------------------------------------------------------------------------------


def check_model(path: Path) -> None:
    """Fail before loading anything: llama.cpp's own message for a missing file is several lines deep in its log."""
    if not path.is_file():
        raise StartError(StartFailure(f"{MODEL_NOT_FOUND}: {path}", EXIT_MODEL_NOT_FOUND))


def check_address(host: str, port: int) -> None:
    """Fail fast and precisely when the address cannot be listened on.

    xllamacpp fails by itself on a taken port, but only says "couldn't bind HTTP server socket" in its log; binding
    here first gives the exact reason (in use, not available, unknown host) before the engine is imported.
    """
    if port == 0:
        return
    error = bind_error(host, port)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        raise StartError(StartFailure(f"{ADDRESS_IN_USE}: {host}:{port}", EXIT_ADDRESS_IN_USE))
    raise StartError(StartFailure(f"cannot listen on {host}:{port}: {error.strerror or error}", EXIT_START_FAILED))


def bind_error(host: str, port: int) -> OSError | None:
    """The error binding ``host:port`` raises, or None if it is free. SO_REUSEADDR as the engine's HTTP library sets
    it, so a port in TIME_WAIT after a previous server counts as free, as it is for the engine."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        return error
    return None


def start_server(args: argparse.Namespace) -> Any:
    """Load the model and start serving; the returned ``xllamacpp.Server`` serves until it is garbage-collected."""
    try:
        import xllamacpp
    except ImportError as error:
        raise StartError(
            StartFailure(f"engine failed to start: cannot import xllamacpp ({error})", EXIT_START_FAILED)
        ) from None
    params = build_params(args, xllamacpp)
    print(f"{PROG}: loading {args.model} with xllamacpp {xllamacpp.__version__}", flush=True)
    with replayed_native_log() as log:
        try:
            return xllamacpp.Server(params)
        except (RuntimeError, ValueError, MemoryError) as error:
            failure = error
    raise StartError(classify_start_failure(log.text, failure))


def classify_start_failure(native_log: str, error: BaseException) -> StartFailure:
    """Name the cause of a failed start from llama.cpp's log; xllamacpp's exception text is always the same."""
    lowered = native_log.lower()
    if isinstance(error, MemoryError) or any(marker in lowered for marker in _OOM_MARKERS):
        detail = _first_line_with(native_log, _OOM_MARKERS) or str(error) or "allocation failed"
        return StartFailure(f"{OUT_OF_MEMORY}: {detail}", EXIT_OUT_OF_MEMORY)
    if any(marker in lowered for marker in _BIND_MARKERS):
        # Only reachable when the port was taken between check_address and the engine's own bind.
        detail = _first_line_with(native_log, _BIND_MARKERS)
        return StartFailure(f"{ADDRESS_IN_USE}: {detail}", EXIT_ADDRESS_IN_USE)
    if any(marker in lowered for marker in _MISSING_FILE_MARKERS):
        detail = _first_line_with(native_log, _MISSING_FILE_MARKERS)
        return StartFailure(f"{MODEL_NOT_FOUND}: {detail}", EXIT_MODEL_NOT_FOUND)
    detail = _first_error_line(native_log) or str(error)
    return StartFailure(f"engine failed to start: {detail}", EXIT_START_FAILED)


def _log_messages(native_log: str) -> Iterator[str]:
    """Each log line's message, without llama.cpp's time and level prefix when it has one."""
    for line in native_log.splitlines():
        match = _ERROR_LINE.match(line)
        yield " ".join((match.group("message") if match else line).split())


def _first_line_with(native_log: str, markers: Sequence[str]) -> str:
    for message in _log_messages(native_log):
        if any(marker in message.lower() for marker in markers):
            return message
    return ""


def _first_error_line(native_log: str) -> str:
    for line in native_log.splitlines():
        match = _ERROR_LINE.match(line)
        if match:
            return " ".join(match.group("message").split())
    return ""


@dataclass
class NativeLog:
    """What llama.cpp wrote to file descriptor 2 while the server started; filled when the capture ends."""

    text: str = ""


@contextmanager
def replayed_native_log() -> Iterator[NativeLog]:
    """Send fd 2 to an in-memory file while the server starts, then replay it to the real stderr and keep its text.

    Why not a pipe: ``xllamacpp.Server`` holds the GIL during the whole load, so no Python thread could drain a
    pipe, and a full pipe would block the engine. A file never blocks. Replayed lines keep llama.cpp's timestamps.
    """
    log = NativeLog()
    sys.stdout.flush()
    sys.stderr.flush()
    real_stderr = os.dup(2)
    buffer = _anonymous_file()
    os.dup2(buffer, 2)
    try:
        yield log
    finally:
        time.sleep(_LOG_DRAIN_SECONDS)
        sys.stderr.flush()
        os.dup2(real_stderr, 2)
        os.close(real_stderr)
        data = _read_all(buffer)
        os.close(buffer)
        _write_all(2, data)
        log.text = data.decode(errors="replace")


def _anonymous_file() -> int:
    """A file descriptor with no name: memfd where Linux has it (works in a container without a writable /tmp)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create(f"{PROG}-startup-log")
    descriptor, path = tempfile.mkstemp(prefix=f"{PROG}-startup-", suffix=".log")
    os.unlink(path)
    return descriptor


def _read_all(descriptor: int) -> bytes:
    os.lseek(descriptor, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(descriptor, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


# --- process ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check, start, announce, wait for SIGTERM/SIGINT, stop. Returns the exit code (see the module doc).

    Meant to own its process: it blocks SIGTERM and SIGINT for good (the process ends after the stop anyway).
    """
    # Blocked first, so a stop request during the load stays pending instead of killing the process midway.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    args = build_parser().parse_args(argv)
    try:
        check_model(args.model)
        check_address(args.host, args.port)
        server = start_server(args)
    except StartError as error:
        print(f"{ERROR_PREFIX}{error.failure.message}", file=sys.stderr, flush=True)
        return error.failure.exit_code
    print(f"{READY_PREFIX} at {server.listening_address} (model {args.model}, pid {os.getpid()})", flush=True)
    received = signal.sigwait(STOP_SIGNALS)
    print(f"{PROG}: {signal.Signals(received).name} received, stopping", flush=True)
    started = time.monotonic()
    del server  # the destructor stops the HTTP server and the slot loop and joins their threads
    print(f"{PROG}: stopped in {time.monotonic() - started:.2f} s", flush=True)
    return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
