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

    id: str = Field(min_length=1, max_length=300)
    tokenizer: str | None = None  # a local HF tokenizer directory or HF id; derived from the model when unset
    served_name: str | None = None  # the name requests use; the engine profile's default when unset

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


class Engine(_Model):
    """Which engine serves the model, how it is started, and the flags that stay fixed across trials."""

    runtime: Runtime
    launcher: LauncherKind = "process"
    image: str | None = Field(default=None, min_length=1, max_length=300)  # docker / kubernetes
    url: str | None = None  # endpoint: the server to benchmark
    python: str | None = None  # the interpreter that has the engine (process: default ours; docker: in the image)
    args: dict[FlagName, ArgValue] = Field(default_factory=dict)
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    startup_timeout: Duration = timedelta(minutes=10)
    gpus: int = Field(default=0, ge=0, le=64)
    # kubernetes launcher settings: namespace, base_model, runtime, service_url, hf_token_secret, ... (README)
    kubernetes: dict[str, str] = Field(default_factory=dict)

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

    values: tuple[ScalarValue, ...] = Field(min_length=1, max_length=10_000)

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

    low: Number
    high: Number
    step: Number | None = None
    log: bool = False

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

    task: str = "text-to-text"
    scenarios: tuple[str, ...] = Field(min_length=1, max_length=100)
    concurrency: tuple[Annotated[int, Field(ge=1, le=100_000)], ...] = Field(min_length=1, max_length=100)
    max_requests: int = Field(default=64, ge=1, le=1_000_000)  # per level
    max_time: Duration = timedelta(minutes=2)  # per level
    warmup_requests: int = Field(default=2, ge=0, le=10_000)
    request_params: dict[str, ScalarValue] = Field(default_factory=dict)  # sent with every request

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

    limits: dict[PercentileKey, Duration] = Field(min_length=1)
    hard: bool = True

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

    max: Fraction
    hard: bool = True

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        return data if isinstance(data, (dict, ErrorRateSLO)) else {"max": data}


class RateSLO(_Model):
    """A throughput floor: ``output_throughput: {min: 50}`` (tokens/s; requests/s for requests_per_second)."""

    min: Annotated[float, Field(gt=0)]
    hard: bool = True


class SLO(_Model):
    """Service-level objectives, judged per level on that level's own distribution (never averaged)."""

    ttft: LatencySLO | None = None
    tpot: LatencySLO | None = None
    e2e_latency: LatencySLO | None = None
    error_rate: ErrorRateSLO = ErrorRateSLO(max=0.0)  # by default a failed request fails the level
    output_throughput: RateSLO | None = None
    total_throughput: RateSLO | None = None
    requests_per_second: RateSLO | None = None


# --------------------------------------------------------------------------------------------------------- objective
class ObjectiveTerm(_Model):
    """``{maximize: output_throughput}`` or ``{minimize: e2e_latency.p90}``."""

    direction: Literal["maximize", "minimize"]
    metric: Annotated[Metric, PlainValidator(parse_metric)]

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

    enabled: bool = True
    requests: int | None = Field(default=None, ge=1, le=100_000)  # default: two rounds of the level's concurrency
    margin: Fraction = 0.25  # short runs are noisy: only a config this far below the best is hopeless

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        return {"enabled": value} if isinstance(value, bool) else value


class Racing(_Model):
    """Repeats where they matter: after the search, the best so far and the configs that could still beat it are
    measured again (interleaved) until the best is separated or the share of the budget kept for it is spent.

    ``racing: false`` names the best from single measurements (not recommended: see README, "Naming the best").
    """

    enabled: bool = True
    share: Fraction = 0.25  # of max_trials kept for repeats (of the grid's size when there is no max_trials)
    max_repeats: int = Field(default=5, ge=1, le=100)  # per config: configs still tied then are reported as tied
    confidence: Fraction = 0.95

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        return {"enabled": value} if isinstance(value, bool) else value


class Search(_Model):
    strategy: Strategy = "auto"
    max_trials: int | None = Field(default=None, ge=1, le=100_000)
    timeout: Duration | None = None
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    baseline: dict[ParameterName, ScalarValue] | None = None  # the config people run today, measured first
    repeats: int = Field(default=1, ge=1, le=100)
    probe: Probe = Probe()
    racing: Racing = Racing()


class Regression(_Model):
    threshold: Fraction = 0.05  # a slowdown smaller than this is "unchanged"
    confidence: Fraction = 0.95

    @field_validator("confidence")
    @classmethod
    def _meaningful(cls, value: float) -> float:
        if not 0.5 <= value < 1.0:
            raise ValueError("confidence must lie between 50% and 99.99%")
        return value


# -------------------------------------------------------------------------------------------------------------- spec
class TuningSpec(_Model):
    """One tuning problem: a model on an engine, a search space, a workload, SLOs and an objective."""

    name: str
    description: str = Field(default="", max_length=2000)
    model: Model
    engine: Engine
    parameters: dict[ParameterName, Dimension] = Field(default_factory=dict, max_length=64)
    constraints: tuple[Annotated[str, Field(min_length=1, max_length=1000)], ...] = Field(default=(), max_length=100)
    workload: Workload
    slo: SLO = SLO()
    objective: Annotated[tuple[ObjectiveTerm, ...], Field(min_length=1, max_length=8)] = (
        ObjectiveTerm(direction="maximize", metric=Metric("output_throughput")),
    )
    search: Search = Search()
    regression: Regression = Regression()

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
