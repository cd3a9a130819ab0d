"""What the tool knows about one inference engine: how to start it, talk to it, and read its failures.

A profile is pure knowledge (no processes): the command line for a set of flags in that engine's style, the
served model name, the health / metrics / cache-reset endpoints, the default container image, and the log lines
that identify an out-of-memory, an invalid argument, a missing model or a taken port. Launchers and the
benchmark driver ask the profile; nothing else hard-codes engine details.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

Scalar = bool | int | float | str
FlagValue = Scalar | list[Scalar]


class FailureKind(str, Enum):
    """Why a launch failed; each is an outcome of the config being tried, not a crash of the tool."""

    OOM = "oom"
    INVALID_ARGUMENT = "invalid-argument"
    MODEL_NOT_FOUND = "model-not-found"
    PORT_IN_USE = "port-in-use"
    CRASH = "crash"
    TIMEOUT = "timeout"


# Lines any engine (or its Python runtime) prints for these failures. Profiles add their own in front.
COMMON_FAILURES: tuple[tuple[FailureKind, str], ...] = (
    (
        FailureKind.OOM,
        r"CUDA out of memory|OutOfMemoryError|out of memory|Cannot allocate memory|"
        r"not enough memory|insufficient memory|KV cache .*(?:too small|exceeds)|"
        r"No available memory for the cache blocks",
    ),
    (FailureKind.PORT_IN_USE, r"[Aa]ddress already in use|EADDRINUSE|port .* (?:is )?(?:already )?in use"),
    (
        FailureKind.MODEL_NOT_FOUND,
        r"model not found|No such file or directory.*(?:\.gguf|config\.json)|"
        r"Repository Not Found|is not a local folder and is not a valid model identifier|"
        r"RepositoryNotFoundError|OSError: .* does not appear to have a file",
    ),
    (
        FailureKind.INVALID_ARGUMENT,
        r"error: unrecognized arguments|error: argument [^\s]+|invalid choice|"
        r"ValueError: .*(?:must be|should be|is not supported|invalid)",
    ),
)


@dataclass(frozen=True)
class Endpoints:
    health: str = "/health"
    metrics: str | None = "/metrics"
    cache_reset: str | None = None  # POSTed between benchmark levels where the engine has one
    models: str = "/v1/models"
    # Prometheus gauges that are non-zero while the engine still works on requests: the driver waits for them to
    # reach zero between levels (the engine goes on with requests genai-bench dropped at the end of a level).
    busy_gauges: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineProfile:
    """Static knowledge of one runtime. ``module`` is what ``python -m`` runs to start the server."""

    runtime: str
    module: str
    default_image: str | None
    bool_style: str  # "negatable": --x / --no-x; "store-true": --x or nothing
    endpoints: Endpoints = field(default_factory=Endpoints)
    failures: tuple[tuple[FailureKind, str], ...] = ()
    model_flag: str = "--model"
    served_name_flag: str | None = "--served-model-name"
    api_backend: str = "vllm"  # genai-bench --api-backend that sends ignore_eos to this engine
    server_engine: str = "vLLM"  # genai-bench --server-engine (metadata only)
    container_python: str = "python3"
    env: Mapping[str, str] = field(default_factory=dict)  # always set for this engine (e.g. dev endpoints)

    def render_flag(self, name: str, value: FlagValue) -> list[str]:
        """One flag as argv tokens in this engine's style; values keep their spelling (``True`` -> flag only)."""
        option = f"--{name}"
        if isinstance(value, bool):
            if value:
                return [option]
            return [f"--no-{name}"] if self.bool_style == "negatable" else []
        if isinstance(value, list):
            return [option, *(_token(v) for v in value)]
        return [option, _token(value)]

    def render_flags(self, flags: Mapping[str, FlagValue]) -> list[str]:
        tokens: list[str] = []
        for name, value in flags.items():
            tokens.extend(self.render_flag(name, value))
        return tokens

    def server_args(
        self, *, model: str, served_name: str, host: str, port: int, flags: Mapping[str, FlagValue]
    ) -> list[str]:
        """Arguments after ``python -m <module>``: model, name, address, then the config's flags."""
        args = [self.model_flag, model]
        if self.served_name_flag:
            args += [self.served_name_flag, served_name]
        args += ["--host", host, "--port", str(port)]
        return args + self.render_flags(flags)

    def argv(
        self, python: str, *, model: str, served_name: str, host: str, port: int, flags: Mapping[str, FlagValue]
    ) -> list[str]:
        """The full command line as a list (never a shell string)."""
        return [
            python,
            "-m",
            self.module,
            *self.server_args(model=model, served_name=served_name, host=host, port=port, flags=flags),
        ]

    def classify(self, log: str) -> FailureKind | None:
        """The failure a log shows, checking this engine's patterns before the common ones; None if unknown."""
        for kind, pattern in (*self.failures, *COMMON_FAILURES):
            if re.search(pattern, log):
                return kind
        return None


def _token(value: Scalar) -> str:
    if isinstance(value, float) and value.is_integer():
        return repr(value)  # keep "1.0" a float on the command line, as the spec wrote it
    return str(value)


def split_flags(args: Mapping[str, FlagValue]) -> tuple[dict[str, FlagValue], dict[str, str], dict[str, Scalar]]:
    """Separate a config's names by namespace: engine flags, ``env.X`` variables, ``request.X`` fields."""
    flags: dict[str, FlagValue] = {}
    env: dict[str, str] = {}
    request: dict[str, Scalar] = {}
    for name, value in args.items():
        if name.startswith("env."):
            env[name[4:]] = _env_value(value)
        elif name.startswith("request."):
            if isinstance(value, list):
                raise ValueError(f"{name} takes a single value")
            request[name[8:]] = value
        else:
            flags[name] = value
    return flags, env, request


def _env_value(value: FlagValue) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def option_names(tokens: Sequence[str]) -> list[str]:
    return [t for t in tokens if t.startswith("--")]
