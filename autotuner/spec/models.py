"""The tuning spec: one pydantic model that is the single source of truth for the YAML format.

Everything downstream (search space, launchers, genai-bench driver, SLO judge, reports) reads these typed
values; nothing re-parses YAML. Field names are the YAML keys. Models forbid unknown keys so a typo is an error
with a suggestion instead of a silently ignored setting.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    field_validator,
    model_validator,
)

from ..catalog import BUILTIN_MODELS
from ..metric import Better, Metric, parse_metric
from ..scenario import TASKS
from ..units import Duration, Fraction, Percentile, parse_percentile

Scalar = bool | int | float | str


def _scalar(value: Any) -> Scalar:
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value
    kind = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__
    raise ValueError(f"expected a plain value (true/false, a number or a string), got {kind}")


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


_FLAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker's reference grammar (distribution/reference), slightly relaxed on the registry part.
_IMAGE_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?"  # registry[:port]/ (or a first path part)
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # name
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_NAMESPACES = ("env.", "request.")


def _flag_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a flag name must be a string, got {value!r}")
    if value.startswith("-"):
        raise ValueError(f"write flag names without leading dashes: {value.lstrip('-')!r}, not {value!r}")
    if len(value) > 100 or not _FLAG_RE.match(value):
        raise ValueError(f"invalid flag name {value!r}: use letters, digits, '-' and '_' as the engine spells it")
    return value


def _parameter_name(value: Any) -> str:
    """A parameter is an engine flag (``n-parallel``), an engine env var (``env.X``) or a request field."""
    name = _flag_name(value)
    for prefix in _NAMESPACES:
        if name.startswith(prefix) and not _ENV_RE.match(name[len(prefix) :]):
            raise ValueError(f"invalid name after {prefix!r} in {name!r}: use letters, digits and '_'")
    return name


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not _ENV_RE.match(value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValueError("an environment variable's value must be a string or a number")


def _percentile_key(value: Any) -> Percentile:
    return parse_percentile(value)


ScalarValue = Annotated[Scalar, PlainValidator(_scalar)]
Number = Annotated[int | float, PlainValidator(_number)]
FlagName = Annotated[str, PlainValidator(_flag_name)]
ParameterName = Annotated[str, PlainValidator(_parameter_name)]
EnvName = Annotated[str, PlainValidator(_env_name)]
EnvValue = Annotated[str, PlainValidator(_env_value)]
PercentileKey = Annotated[Percentile, PlainValidator(_percentile_key)]
ArgValue = Annotated[
    Scalar | list[ScalarValue], PlainValidator(lambda v: [_scalar(x) for x in v] if isinstance(v, list) else _scalar(v))
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """``"did you mean 'x'? "`` for the closest choice, or ``""``: meant to precede a parenthesised list."""
    hint = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {hint[0]!r}? " if hint else ""


def unknown(what: str, word: str, choices: list[str] | tuple[str, ...], listing: str) -> str:
    """``unknown value 'vlm': did you mean 'vllm'? (choose from ...)`` without dangling punctuation."""
    hint = did_you_mean(word, choices)
    return f"{what} {word!r}: {hint}({listing})" if hint else f"{what} {word!r} ({listing})"


# ---------------------------------------------------------------------------------------------------------- model
class Model(_Model):
    """What to serve: ``builtin:<name>`` (ships in a package), a Hugging Face id, or a local path."""

    id: str = Field(
        min_length=1,
        max_length=300,
        description=f"what to serve: builtin:<name> (a model shipped in a package: {', '.join(BUILTIN_MODELS)}), "
        "a Hugging Face id (org/name), or a local path (/..., ./..., ~/...)",
    )
    tokenizer: str | None = Field(
        default=None,
        description="genai-bench's tokenizer: a local Hugging Face tokenizer folder, a GGUF file (converted offline "
        "and cached) or a Hugging Face id; derived from the model when unset",
    )
    served_name: str | None = Field(
        default=None, description="the model name requests use; the engine profile's default when unset"
    )

    @field_validator("id")
    @classmethod
    def _known_builtin(cls, value: str) -> str:
        if value.startswith("builtin:"):
            name = value.removeprefix("builtin:")
            if name not in BUILTIN_MODELS:
                raise ValueError(
                    unknown(
                        "unknown builtin model",
                        name,
                        tuple(BUILTIN_MODELS),
                        f"builtin models: {', '.join(BUILTIN_MODELS)}",
                    )
                )
        elif any(ch.isspace() for ch in value) or "\x00" in value:
            raise ValueError(f"invalid model id {value!r}: no spaces allowed")
        return value

    @property
    def kind(self) -> Literal["builtin", "path", "hub"]:
        if self.id.startswith("builtin:"):
            return "builtin"
        if self.id.startswith(("/", "./", "../", "~")):
            return "path"
        return "hub"


# --------------------------------------------------------------------------------------------------------- engine
Runtime = Literal["llamacpp", "vllm", "sglang", "sim"]  # sim: the engine double (tests, dry runs)
LauncherKind = Literal["process", "docker", "kubernetes", "endpoint"]
HF_CACHE_TARGET = "/root/.cache/huggingface"  # where a hub model's cache is mounted in the container (HF_HOME)
_IPC_MODES = ("host", "private", "shareable", "none")
_PATH_RE = re.compile(r"^[^\x00-\x1f\x7f]+$")  # a path echoed in logs: no control characters (no forged lines)


class DockerMount(_Model):
    """A host folder or file made visible in the engine's container, as ``docker run -v source:target[:ro]``."""

    source: str = Field(
        min_length=1,
        max_length=4096,
        pattern=_PATH_RE.pattern,
        description="the host path (~ expands; a relative path is relative to the spec's folder)",
    )
    target: str = Field(
        min_length=1,
        max_length=4096,
        pattern=_PATH_RE.pattern,
        description="the absolute path inside the container",
    )
    read_only: bool = Field(default=True, description="false lets the engine write there (a cache); true by default")

    @field_validator("target")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"target {value!r} must be an absolute path inside the container")
        return value


class DockerSettings(_Model):
    """docker launcher settings besides the image and GPUs: more mounts, the Hugging Face cache, shared memory,
    pulling and the init process."""

    mounts: tuple[DockerMount, ...] = Field(
        default=(),
        max_length=64,
        description="more host paths in the container, e.g. [{source: /data/prompts, target: /prompts}] (a local "
        "model's folder is mounted without asking)",
    )
    hf_cache: bool | str = Field(
        default=True,
        description=f"a Hugging Face hub model: the host's HF cache mounted read-write at {HF_CACHE_TARGET} "
        "(HF_HOME), so the weights are downloaded once, not in every trial's fresh container; true: $HF_HOME or "
        "~/.cache/huggingface of the tool's environment, a path: that folder, false: not mounted",
    )
    pull: Literal["missing", "never", "always"] = Field(
        default="missing",
        description="missing: pull only an image not on the machine; never (air-gapped runners); always",
    )
    ipc: str = Field(
        default="host",
        description="Docker IPC mode: host (engines share tensors through /dev/shm), private, shareable, none or "
        "container:<name>",
    )
    shm_size: str = Field(
        default="8g",
        description="/dev/shm's size with an IPC mode other than host (with host the engine uses the host's)",
    )
    init: bool = Field(
        default=True,
        description="Docker's init as PID 1, so a stop reaches an engine that is still starting; false for a "
        "daemon without one",
    )

    def mounts_hf_cache(self, model: Model) -> bool:
        """Whether the host's HF cache goes into the container: only a hub model downloads weights there."""
        return model.kind == "hub" and self.hf_cache is not False

    @field_validator("ipc")
    @classmethod
    def _ipc_mode(cls, value: str) -> str:
        if value in _IPC_MODES or re.match(r"^container:[A-Za-z0-9][A-Za-z0-9_.-]*$", value):
            return value
        raise ValueError(
            unknown(
                "unknown IPC mode", value, _IPC_MODES, "choose from host, private, shareable, none, container:<name>"
            )
        )

    @field_validator("shm_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not re.match(r"^[0-9]+[bkmgBKMG]?$", value):
            raise ValueError(f"invalid shm_size {value!r}: a size like 8g, 512m or 1073741824 (bytes)")
        return value

    @field_validator("hf_cache")
    @classmethod
    def _cache_path(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and (not value or not _PATH_RE.match(value)):
            raise ValueError(f"invalid hf_cache {value!r}: expected true, false or a host folder")
        return value


class Engine(_Model):
    """Which engine serves the model, how it is started, and the flags that stay fixed across trials."""

    runtime: Runtime = Field(
        description="the engine: llamacpp (llama.cpp's server from the xllamacpp wheel), vllm, sglang, or sim "
        "(the engine double, for tests and dry runs)"
    )
    launcher: LauncherKind = Field(
        default="process",
        description="how the engine is started: process (a local process group), docker (a container), "
        "kubernetes (an OME InferenceService), endpoint (a server that already runs at url)",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="docker / kubernetes: the image, [registry/]name[:tag][@sha256:digest]; unset: the runtime's "
        "default image, where it has one",
    )
    url: str | None = Field(default=None, description="endpoint only: the server to benchmark (http://host:port)")
    python: str | None = Field(
        default=None,
        description="the interpreter that has the engine (process: default the one the flag check finds: "
        "AUTOTUNER_VLLM_PYTHON / AUTOTUNER_SGLANG_PYTHON, the venv in AUTOTUNER_VLLM_VENV / AUTOTUNER_SGLANG_VENV or "
        "~/.cache/autotuner/venvs/<vllm-cpu|sglang>, else ours; docker: the one in the image)",
    )
    args: dict[FlagName, ArgValue] = Field(
        default_factory=dict,
        description="fixed flags of every trial, named as the engine spells them without leading dashes; true "
        "renders the bare flag, false its negation where the engine has one, a list several values",
    )
    env: dict[EnvName, EnvValue] = Field(
        default_factory=dict,
        description="the engine's environment additions; values become strings (true -> 1, false -> 0)",
    )
    startup_timeout: Duration = Field(
        default=timedelta(minutes=10),
        description="readiness deadline: how long the engine may take to answer its health check (large models "
        "compile for minutes: torch.compile, CUDA graphs)",
    )
    gpus: int = Field(
        default=0, ge=0, le=64, description="GPUs the engine gets (docker: device requests; kubernetes: the pod's)"
    )
    kubernetes: dict[str, str] = Field(
        default_factory=dict,
        description="kubernetes launcher settings: namespace, base_model, runtime, service_url, hf_token_secret, "
        "... (docs/scaling.md)",
    )
    docker: DockerSettings = Field(
        default_factory=DockerSettings,
        description="docker launcher settings: mounts, hf_cache, pull, ipc, shm_size, init (see engine.docker)",
    )

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str | None) -> str | None:
        """A Docker image reference (``[registry[:port]/]name[:tag][@digest]``), nothing else: the value is echoed
        in messages and logs, where whitespace or control characters could forge lines (CI workflow commands)."""
        if value is not None and not _IMAGE_RE.match(value):
            raise ValueError(f"invalid image {value!r}: expected [registry/]name[:tag][@sha256:digest]")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", value):
            raise ValueError(f"invalid url {value!r}: expected http://host:port or https://host/path")
        return value


# ------------------------------------------------------------------------------------------------------- parameters
class Choice(_Model):
    """A list of values to choose from (categorical, or an explicit grid): ``n-parallel: [1, 2, 4]``."""

    values: tuple[ScalarValue, ...] = Field(
        min_length=1,
        max_length=10_000,
        description="the values, each kept with its type (true/false, 1 vs 1.0, strings); no value twice",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)) and not data:
            raise ValueError("the list of values is empty: give at least one, e.g. [1, 2]")
        return {"values": data} if isinstance(data, (list, tuple)) else data

    @field_validator("values")
    @classmethod
    def _unique(cls, values: tuple[Scalar, ...]) -> tuple[Scalar, ...]:
        seen: set[tuple[str, Scalar]] = set()
        for value in values:
            key = (type(value).__name__, value)
            if key in seen:
                raise ValueError(f"value {value!r} is listed twice")
            seen.add(key)
        return values


class Range(_Model):
    """A numeric range: ``{low: 256, high: 2048, step: 256, log: true}``.

    Integers when ``low`` and ``high`` (and ``step``) are integers. With a step the range is a grid
    (``low, low+step, ... <= high``); without one, an integer range steps by 1 and a float range is continuous
    (sampled strategies only). ``log`` makes sampled strategies draw on a log scale.
    """

    low: Number = Field(description="the smallest value (an integer range when low, high and step are integers)")
    high: Number = Field(description="the largest value; must be greater than low")
    step: Number | None = Field(
        default=None,
        description="with a step the range is a grid (low, low+step, ... <= high); without one an integer range "
        "steps by 1 and a float range is continuous (sampled strategies only)",
    )
    log: bool = Field(default=False, description="sampled strategies draw on a log scale (needs low > 0)")

    @model_validator(mode="before")
    @classmethod
    def _not_a_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and "values" in data:
            raise ValueError("write a list of values as a YAML list, e.g. [1, 2, 4], not {values: ...}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Range:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be smaller than high ({self.high})")
        if self.step is not None and not 0 < self.step <= self.high - self.low:
            raise ValueError(f"step ({self.step}) must be positive and at most high - low ({self.high - self.low})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        if abs(self.low) > 1e15 or abs(self.high) > 1e15:
            raise ValueError("range bounds beyond 1e15 are surely a mistake")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None)


def _dimension_kind(value: Any) -> str | None:
    if isinstance(value, (list, tuple, Choice)):
        return "choice"
    if isinstance(value, (dict, Range)):
        return "range"
    return None


Dimension = Annotated[
    Annotated[Choice, Tag("choice")] | Annotated[Range, Tag("range")],
    Discriminator(
        _dimension_kind,
        custom_error_type="dimension",
        custom_error_message=(
            "a parameter is a list of values such as [1, 2, 4] or a range such as {low: 1, high: 8}; "
            "a single fixed value belongs in engine.args"
        ),
    ),
]


# --------------------------------------------------------------------------------------------------------- workload
class Workload(_Model):
    """The traffic genai-bench sends: each scenario at each concurrency is one level, judged on its own."""

    task: str = Field(default="text-to-text", description=f"a genai-bench task: one of {', '.join(TASKS)}")
    scenarios: tuple[str, ...] = Field(
        min_length=1,
        max_length=100,
        description="genai-bench traffic scenarios, checked with genai-bench's own grammar: D(in,out) exact token "
        "counts, N(in_mean,in_sd)/(out_mean,out_sd) normal, U(...) uniform",
    )
    concurrency: tuple[Annotated[int, Field(ge=1, le=100_000)], ...] = Field(
        min_length=1,
        max_length=100,
        description="requests in flight (closed loop); each scenario at each concurrency is one level, run in "
        "ascending order and judged on its own",
    )
    max_requests: int = Field(default=64, ge=1, le=1_000_000, description="requests per level")
    max_time: Duration = Field(
        default=timedelta(minutes=2),
        description="time limit per level, at least 1s; genai-bench counts whole minutes, so it is rounded up to one",
    )
    warmup_requests: int = Field(
        default=2,
        ge=0,
        le=10_000,
        description="unmeasured requests shaped like the first scenario, sent once the engine is ready "
        "(compilation, caches and first-request costs stay out of the figures)",
    )
    request_params: dict[str, ScalarValue] = Field(
        default_factory=dict, description="fields sent with every request, e.g. {temperature: 0.0}"
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(unknown("unknown task", value, TASKS, f"genai-bench tasks: {', '.join(TASKS)}"))
        return value

    @field_validator("concurrency")
    @classmethod
    def _unique_levels(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"concurrency {duplicates[0]} is listed twice")
        return values

    @field_validator("max_time")
    @classmethod
    def _at_least_a_second(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("max_time must be at least 1s")
        return value


# --------------------------------------------------------------------------------------------------------------- slo
class LatencySLO(_Model):
    """Limits on one latency distribution, e.g. ``{p90: 2s, p99: 5s}``; ``hard: false`` makes misses cost score."""

    limits: dict[PercentileKey, Duration] = Field(
        min_length=1,
        description="written as keys beside hard: a statistic (mean, max or pN with 0 < N < 100) and its limit",
    )
    hard: bool = Field(
        default=True,
        description="true: a miss makes the level infeasible; false: a miss multiplies the level's objective "
        "value by exp(-overshoot / 0.25)",
    )

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if isinstance(data, dict) and "limits" not in data:
            rest = {k: v for k, v in data.items() if k != "hard"}
            if not rest:
                raise ValueError("give at least one limit, e.g. {p90: 2s}")
            return {"limits": rest, **({"hard": data["hard"]} if "hard" in data else {})}
        if not isinstance(data, (dict, LatencySLO)):
            raise ValueError("a latency SLO is a mapping of statistic to limit, e.g. {p90: 2s}")
        return data


class ErrorRateSLO(_Model):
    """The highest share of failed requests a level may have: ``error_rate: 1%``."""

    max: Fraction = Field(description="the highest share of failed requests (recomputed from the requests)")
    hard: bool = Field(default=True, description="false: a miss costs score instead of feasibility")

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        return data if isinstance(data, (dict, ErrorRateSLO)) else {"max": data}


class RateSLO(_Model):
    """A throughput floor: ``output_throughput: {min: 50}`` (tokens/s; requests/s for requests_per_second)."""

    min: Annotated[float, Field(gt=0)] = Field(description="the lowest acceptable rate of the level")
    hard: bool = Field(default=True, description="false: a miss costs score instead of feasibility")


class SLO(_Model):
    """Service-level objectives, judged per level on that level's own distribution (never averaged)."""

    ttft: LatencySLO | None = Field(default=None, description="limits on the time to first token")
    tpot: LatencySLO | None = Field(default=None, description="limits on the time per output token after the first")
    e2e_latency: LatencySLO | None = Field(default=None, description="limits on the end-to-end request latency")
    error_rate: ErrorRateSLO = Field(
        default=ErrorRateSLO(max=0.0), description="the highest error rate; by default a failed request fails the level"
    )
    output_throughput: RateSLO | None = Field(default=None, description="a floor on output tokens/s")
    total_throughput: RateSLO | None = Field(default=None, description="a floor on input+output tokens/s")
    requests_per_second: RateSLO | None = Field(default=None, description="a floor on completed requests/s")


# --------------------------------------------------------------------------------------------------------- objective
class ObjectiveTerm(_Model):
    """``{maximize: output_throughput}`` or ``{minimize: e2e_latency.p90}``."""

    direction: Literal["maximize", "minimize"] = Field(
        description="written as the key: maximize for rates, minimize for latencies and error_rate"
    )
    metric: Annotated[Metric, PlainValidator(parse_metric)] = Field(
        description="written as the value: a metric, with a statistic for latencies (e2e_latency.p90)"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, data: Any) -> Any:
        if isinstance(data, ObjectiveTerm) or (isinstance(data, dict) and "direction" in data):
            return data
        if not isinstance(data, dict) or len(data) != 1:
            raise ValueError(
                "an objective is {maximize: METRIC} or {minimize: METRIC}, e.g. {maximize: output_throughput}"
            )
        ((direction, metric),) = data.items()
        if direction not in ("maximize", "minimize"):
            directions = ("maximize", "minimize")
            raise ValueError(unknown("unknown direction", str(direction), directions, "use maximize or minimize"))
        return {"direction": direction, "metric": metric}

    @model_validator(mode="after")
    def _sensible(self) -> ObjectiveTerm:
        better = self.metric.info.better
        if (better is Better.HIGHER) != (self.direction == "maximize"):
            opposite = "maximize" if self.direction == "minimize" else "minimize"
            raise ValueError(
                f"{self.direction} {self.metric} would prefer worse configs: {better.value} is better, use {opposite}"
            )
        return self

    def __str__(self) -> str:
        return f"{self.direction} {self.metric}"


def _objective_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


# ------------------------------------------------------------------------------------------------------------ search
Strategy = Literal["auto", "grid", "random", "tpe", "nsga2"]


class Probe(_Model):
    """The incumbent probe: a short run of a new config at the level where the best so far got its value.

    A config whose probe is more than ``margin`` below the best so far is dropped there (outcome ``skipped``)
    instead of running its whole workload. ``probe: false`` turns it off.
    """

    enabled: bool = Field(default=True, description="false: no probe (probe: false says the same)")
    requests: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="requests in a probe; unset: two rounds of the level's concurrency",
    )
    margin: Fraction = Field(
        default=0.25,
        description="short runs are noisy: only a config this far below the best so far is hopeless",
    )

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        return {"enabled": value} if isinstance(value, bool) else value


class Racing(_Model):
    """Repeats where they matter: after the search, the best so far and the configs that could still beat it are
    measured again (interleaved) until the best is separated or the share of the budget kept for it is spent.

    ``racing: false`` names the best from single measurements (not recommended: see README, "Naming the best").
    """

    enabled: bool = Field(
        default=True, description="false: no racing, the best from single measurements (racing: false says the same)"
    )
    share: Fraction = Field(
        # 15%, not more: racing's repeats come out of the search's trials, and on the recorded noise
        # (benchmarks/best_confidence.py, 200 seeds) 25% named the true tie-set less often at 24 trials (77% vs 82%)
        # and no more often at 36-48 (94-97% either way).
        default=0.15,
        description="of max_trials kept for repeats (of the grid's size when there is no max_trials)",
    )
    max_repeats: int = Field(
        default=5, ge=1, le=100, description="per config: configs still tied then are reported as tied"
    )
    confidence: Fraction = Field(
        default=0.95, description="how sure a test must be that a config is worse before it leaves the race"
    )

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        return {"enabled": value} if isinstance(value, bool) else value


class Search(_Model):
    """How configs are chosen and how many are measured: the strategy, the budget, and the repeats that name the
    best with confidence."""

    strategy: Strategy = Field(
        default="auto",
        description="auto: a grid of at most 16 configs measured whole when it fits the budget, else TPE (NSGA-II "
        "for several objectives); or grid, random, tpe, nsga2",
    )
    max_trials: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="measurements in all, the baseline and repeats included; unset: the whole grid (plus racing)",
    )
    timeout: Duration | None = Field(
        default=None, description="time budget of the study; configs not started by then are skipped"
    )
    seed: int = Field(
        default=0, ge=0, le=2**32 - 1, description="seeds the sampler and grid sampling: the same run every time"
    )
    baseline: dict[ParameterName, ScalarValue] | None = Field(
        default=None,
        description="the config people run today, measured first; results are reported relative to it",
    )
    repeats: int = Field(
        default=1, ge=1, le=100, description="a floor on the measurements of the best and of its tie-set"
    )
    probe: Probe = Field(default=Probe(), description="the incumbent probe (false: off)")
    racing: Racing = Field(default=Racing(), description="repeats of the leaders after the search (false: off)")


class Regression(_Model):
    """How a run is judged against main's baseline (autotuner compare, tune --baseline, the Action)."""

    threshold: Fraction = Field(default=0.05, description='a slowdown smaller than this is "unchanged"')
    confidence: Fraction = Field(default=0.95, description="of the interval on each change; between 50% and 99.99%")

    @field_validator("confidence")
    @classmethod
    def _meaningful(cls, value: float) -> float:
        if not 0.5 <= value < 1.0:
            raise ValueError("confidence must lie between 50% and 99.99%")
        return value


# -------------------------------------------------------------------------------------------------------------- spec
class TuningSpec(_Model):
    """One tuning problem: a model on an engine, a search space, a workload, SLOs and an objective."""

    name: str = Field(
        description="unique across spec files; lowercase letters, digits and '-', at most 63 characters, not "
        "starting or ending with '-'"
    )
    description: str = Field(default="", max_length=2000, description="one line for people; shown in reports")
    model: Model = Field(description="what to serve")
    engine: Engine = Field(description="which engine serves it and how it is started")
    parameters: dict[ParameterName, Dimension] = Field(
        default_factory=dict,
        max_length=64,
        description="the search space: an engine flag, env.NAME (an engine environment variable) or request.NAME "
        "(a field sent with each request), each with a list of values or a range",
    )
    constraints: tuple[Annotated[str, Field(min_length=1, max_length=1000)], ...] = Field(
        default=(),
        max_length=100,
        description="expressions over parameters and fixed engine.args that every config must satisfy",
    )
    workload: Workload = Field(description="the traffic genai-bench sends, level by level")
    slo: SLO = Field(default=SLO(), description="limits judged per level")
    objective: Annotated[
        tuple[ObjectiveTerm, ...],
        Field(
            min_length=1,
            max_length=8,
            description="what the search optimizes over a config's feasible levels; a list is a multi-objective search",
        ),
    ] = (ObjectiveTerm(direction="maximize", metric=Metric("output_throughput")),)
    search: Search = Field(default=Search(), description="how configs are chosen and how many are measured")
    regression: Regression = Field(default=Regression(), description="how a run is judged against main's baseline")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", value):
            raise ValueError(
                f"invalid name {value!r}: use lowercase letters, digits and '-' (e.g. smollm2-cpu), "
                "at most 63 characters, not starting or ending with '-'"
            )
        return value

    @field_validator("objective", mode="before")
    @classmethod
    def _wrap(cls, value: Any) -> Any:
        return _objective_list(value)

    @property
    def multi_objective(self) -> bool:
        return len(self.objective) > 1
