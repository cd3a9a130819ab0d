"""``docs/spec-reference.md``, generated from the spec models so the reference cannot drift from the code.

Why generated: a hand-written reference goes stale the first time a field, a default or a bound changes, and a
stale reference is worse than none. Here every row comes from ``autotuner/spec/models.py``: the key, the type
(as a user writes it, e.g. a duration rather than ``timedelta``), the default (serialized as the spec would
spell it), the bounds and choices (from the field's metadata), and the meaning (the field's ``description``).
What the models cannot say (how a shorthand is written, a section's example) lives here as YAML snippets, and
every one of them is parsed by the real loader while the page is generated, so a broken example breaks the
generator instead of misleading a reader. A type the renderer does not know is an error, not a guess.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Literal, Union

import annotated_types
import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from ..metric import METRICS, parse_metric
from ..spec import models
from ..units import PERCENTILE_HELP, format_duration, parse_duration, parse_fraction
from ..validation import load_spec_text
from .markdown import cell as _cell

TITLE = "Spec reference"

# What each validator function accepts, as a person writes it. A field whose validator is not listed here makes
# the generator fail: add its spelling here (and its explanation to UNITS when it is a new kind of value).
_ARG_VALUE = typing.get_args(models.ArgValue)[1].func
VALUE_KINDS: dict[Callable[..., Any], str] = {
    parse_duration: "duration",
    parse_fraction: "percentage",
    models._scalar: "value",
    models._number: "number",
    models._flag_name: "flag name",
    models._parameter_name: "parameter name",
    models._env_name: "variable name",
    models._env_value: "value (becomes a string)",
    models._percentile_key: "statistic",
    parse_metric: "metric",
    _ARG_VALUE: "value or list of values",
}

# How a nested model is written where it appears as a field's value, with an example that must validate.
MODEL_FORMS: dict[type[BaseModel], tuple[str, str]] = {
    models.Model: ("mapping", "{id: builtin:smollm2}"),
    models.Engine: ("mapping", "{runtime: llamacpp}"),
    models.DockerSettings: ("mapping", "{pull: never, hf_cache: /data/hf}"),
    models.DockerMount: ("mapping", "{source: /data/prompts, target: /prompts}"),
    models.Choice: ("list of values", "[1, 2, 4]"),
    models.Range: ("range", "{low: 256, high: 2048, step: 256}"),
    models.Workload: ("mapping", "{scenarios: ['D(64,64)'], concurrency: [1, 4]}"),
    models.SLO: ("mapping", "{ttft: {p90: 2s}}"),
    models.LatencySLO: ("statistic -> duration, and hard", "{p90: 2s, p99: 5s, hard: false}"),
    models.ErrorRateSLO: ("percentage, or {max, hard}", "1%"),
    models.RateSLO: ("{min, hard}", "{min: 50}"),
    models.ObjectiveTerm: ("{maximize: METRIC} or {minimize: METRIC}", "{minimize: e2e_latency.p90}"),
    models.Search: ("mapping", "{strategy: tpe, max_trials: 30}"),
    models.Probe: ("false, or a mapping", "{requests: 8, margin: 25%}"),
    models.Racing: ("false, or a mapping", "{share: 25%, max_repeats: 5}"),
    models.Regression: ("mapping", "{threshold: 5%}"),
}

# Fields whose key is not written as such (the model folds a shorthand into them).
KEY_AS: dict[tuple[type[BaseModel], str], str] = {
    (models.LatencySLO, "limits"): "`mean`, `max`, `pN`",
    (models.ObjectiveTerm, "direction"): "`maximize` / `minimize`",
    (models.ObjectiveTerm, "metric"): "(the key's value)",
}
WRITTEN_AS: dict[tuple[type[BaseModel], str], str] = {
    (models.LatencySLO, "limits"): "duration, one per statistic (at least one)",
    (models.TuningSpec, "objective"): "`{maximize: METRIC}` or `{minimize: METRIC}`, or a list of 1 to 8 of them",
}

# A minimal valid spec; each section's example replaces its keys and is loaded with the real loader.
BASE_SPEC = """\
name: example
model: {id: builtin:smollm2}
engine: {runtime: llamacpp}
parameters: {n-parallel: [1, 2, 4]}
workload: {scenarios: ["D(64,64)"], concurrency: [1]}
"""


class Section(typing.NamedTuple):
    """One part of the page: a heading, the model whose fields it tabulates (if any), prose, and an example."""

    title: str
    model: type[BaseModel] | None
    text: str
    example: str = ""
    level: int = 2


def _sections() -> list[Section]:
    m = models
    return [
        Section(
            "Top level",
            m.TuningSpec,
            "One YAML file per tuning problem. Only `name`, `model`, `engine` and `workload` are required (and a "
            "search space in `parameters`). Unknown keys are errors with a suggestion, never silently ignored. "
            "The smallest valid spec:",
            BASE_SPEC,
        ),
        Section(
            "model",
            m.Model,
            "",
            "model:\n  id: meta-llama/Llama-3.1-8B-Instruct\n  tokenizer: ./tokenizers/llama31\n  served_name: llama\n",
        ),
        Section(
            "engine",
            m.Engine,
            "",
            "engine:\n  runtime: vllm\n  launcher: docker\n  image: vllm/vllm-openai:v0.11.0\n"
            "  args: {max-model-len: 8192, enforce-eager: false}\n  env: {VLLM_LOGGING_LEVEL: INFO}\n"
            "  startup_timeout: 15m\n  gpus: 1\n",
        ),
        Section(
            "`engine.docker`",
            m.DockerSettings,
            "A local model's folder is mounted read-only at its own path without asking; a Hugging Face hub model gets the host's HF cache, so its weights are "
            "downloaded once rather than in every trial's fresh container. A writable mount's host folder that does "
            "not exist yet is created by the tool (not by the daemon, as root); a read-only one that does not exist "
            "stops the run before any container starts, naming it.",
            "engine:\n  runtime: vllm\n  launcher: docker\n  image: vllm/vllm-openai:v0.11.0\n  docker:\n"
            "    pull: never\n    hf_cache: /data/hf\n    mounts: [{source: /data/lora, target: /lora}]\n",
            level=3,
        ),
        Section("A mount", m.DockerMount, "", level=3),
        Section(
            "parameters",
            None,
            "The search space: one entry per tuned setting. A name is an engine flag as the engine spells it "
            "(`max-num-seqs`), `env.NAME` (an environment variable of the engine) or `request.NAME` (a field sent "
            "with every request; configs that differ only in these share one engine launch). Each takes a list of "
            "values or a range. A single fixed value belongs in `engine.args`.",
            "parameters:\n  n-parallel: [1, 2, 4]\n  flash-attn: [true, false]\n"
            "  n-batch: {low: 256, high: 2048, step: 256, log: true}\n  env.LLAMA_ARG_THREADS_HTTP: [1, 2]\n"
            "  request.temperature: [0.0, 0.7]\n",
        ),
        Section("A list of values", m.Choice, "", "parameters:\n  cache-type-k: [f16, q8_0]\n", level=3),
        Section("A range", m.Range, "", "parameters:\n  threads: {low: 1, high: 8}\n", level=3),
        Section(
            "constraints",
            None,
            "A list of expressions every config must satisfy; configs that break one are never launched. Allowed: "
            "numbers, strings, `true`/`false`, parameter names and fixed `engine.args` names, arithmetic "
            "(`+ - * / // % **`), comparisons, `and`/`or`/`not`, `x if c else y`, and the functions `min`, `max`, "
            "`abs`. Nothing else can be evaluated (no attributes, no other calls), so a spec cannot run code. "
            "Hyphenated flag names are names: write a subtraction between two names with spaces "
            "(`n-batch - n-ubatch`).",
            "parameters:\n  n-parallel: [1, 2, 4]\n  threads: [1, 2]\n  n-batch: [256, 512]\n"
            "  n-ubatch: [128, 256]\n"
            'constraints: ["n-parallel * threads <= 8", "n-batch - n-ubatch >= 0", "max(n-parallel, threads) < 8"]\n',
        ),
        Section(
            "workload",
            m.Workload,
            "",
            "workload:\n  task: text-to-text\n  scenarios: ['D(512,256)', 'N(480,240)/(300,150)']\n"
            "  concurrency: [1, 8, 32]\n  max_requests: 200\n  max_time: 5m\n  warmup_requests: 4\n"
            "  request_params: {temperature: 0.0}\n",
        ),
        Section(
            "slo",
            m.SLO,
            "",
            "slo:\n  ttft: {p90: 2s, p99: 5s}\n  tpot: {p90: 50ms, hard: false}\n  e2e_latency: {p99: 40s}\n"
            "  error_rate: 1%\n  output_throughput: {min: 50}\n",
        ),
        Section("Latency limits (`ttft`, `tpot`, `e2e_latency`)", m.LatencySLO, "", level=3),
        Section("`error_rate`", m.ErrorRateSLO, "", level=3),
        Section("Throughput floors", m.RateSLO, "", level=3),
        Section(
            "objective",
            m.ObjectiveTerm,
            "Rates take the best feasible level (the most load the config sustains within the SLOs); latencies "
            "and `error_rate` take the worst feasible level. A config without a feasible level has no value. "
            "Maximizing a latency or minimizing a rate is refused. Metrics:\n\n" + _metrics_table(),
            "objective: [{maximize: output_throughput}, {minimize: ttft.p90}]\n",
        ),
        Section(
            "search",
            m.Search,
            "",
            "search:\n  strategy: tpe\n  max_trials: 30\n  timeout: 8h\n  seed: 1\n"
            "  baseline: {n-parallel: 1}\n  repeats: 2\n  probe: false\n  racing: {share: 30%}\n",
        ),
        Section("`search.probe`", m.Probe, "", "search: {probe: {requests: 16, margin: 20%}}\n", level=3),
        Section("`search.racing`", m.Racing, "", "search: {racing: {max_repeats: 8, confidence: 90%}}\n", level=3),
        Section("regression", m.Regression, "", "regression: {threshold: 3%, confidence: 90%}\n"),
    ]


UNITS = [
    ("duration", "`500ms`, `2s`, `1.5m`, `2h`, `90`", "units `us`, `ms`, `s`, `m` (or `min`), `h`; a bare number is seconds"),
    ("percentage", "`5%`, `0.05`", "a bare number is a fraction in [0, 1]; `5` is refused rather than read as 5%"),
    ("statistic", "`mean`, `max`, `p50`, `p90`, `p99.9`", PERCENTILE_HELP),
    ("value", "`true`, `4`, `0.9`, `fp8`", "a plain YAML value; its type is kept (`1` and `1.0` are different values)"),
    ("metric", "`output_throughput`, `e2e_latency.p90`", "see [objective](#objective); latencies take a statistic"),
]  # fmt: skip


def _metrics_table() -> str:
    rows = ["| metric | unit | better | meaning |", "|---|---|---|---|"]
    for info in METRICS.values():
        name = f"`{info.name}.pN`" if info.needs_statistic else f"`{info.name}`"
        rows.append(f"| {name} | {info.unit} | {info.better.value} | {info.description} |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------------- types
def _flatten(metadata: Iterable[Any]) -> list[Any]:
    """Metadata items, with those of a nested ``Field(...)`` (``Annotated[int, Field(ge=1)]``) spliced in."""
    items: list[Any] = []
    for item in metadata:
        items.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return items


def _bounds(base: Any, metadata: list[Any]) -> str:
    """``1 to 64``, ``>= 0``, ``at most 300 characters`` from annotated-types constraints."""
    low = next((f">= {m.ge}" for m in metadata if isinstance(m, annotated_types.Ge)), "")
    low = low or next((f"> {m.gt}" for m in metadata if isinstance(m, annotated_types.Gt)), "")
    high = next((f"<= {m.le}" for m in metadata if isinstance(m, annotated_types.Le)), "")
    parts = []
    if low.startswith(">=") and high:
        parts.append(f"{low[3:]} to {high[3:]}")
    else:
        parts.extend(p for p in (low, high) if p)
    min_len = next((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), None)
    max_len = next((m.max_length for m in metadata if isinstance(m, annotated_types.MaxLen)), None)
    unit = "characters" if base is str else "items"
    if min_len is not None and max_len is not None:
        parts.append(f"{min_len} to {max_len} {unit}")
    elif max_len is not None:
        parts.append(f"at most {max_len} {unit}")
    elif min_len:
        parts.append(f"at least {min_len} {'character' if base is str else 'item'}")
    return ", ".join(parts)


def written_as(annotation: Any, metadata: Iterable[Any] = ()) -> str:
    """How a value of this type is written in YAML, with its bounds; raises ``TypeError`` for an unknown type."""
    meta = _flatten(metadata)
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return written_as(base, [*_flatten(extra), *meta])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:  # optional: "unset" is in the default column
        (member,) = [a for a in args if a is not type(None)]
        return written_as(member, meta)
    bounds = _bounds(annotation if origin is None else list, meta)
    within = f" ({bounds})" if bounds else ""
    if origin is dict:
        return f"mapping{within.replace('items', 'entries')} of {written_as(args[0])} to {written_as(args[1])}"
    if origin in (tuple, list):
        return f"list{within} of {written_as(args[0])}"
    validator = next((m.func for m in meta if getattr(m, "func", None) in VALUE_KINDS), None)
    text = VALUE_KINDS[validator] if validator is not None else _structure(annotation)
    return text + within


def _structure(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(written_as(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        form, example = MODEL_FORMS[annotation]
        return f"[{form}](#{_anchor(_section_of(annotation).title)}), e.g. `{example}`"
    simple = {bool: "`true` or `false`", int: "integer", float: "number", str: "text"}
    if annotation in simple:
        return simple[annotation]
    raise TypeError(f"no written form for {annotation!r}: describe it in autotuner/docgen/spec_reference.py")


# ---------------------------------------------------------------------------------------------- defaults
def _flow(value: Any) -> str:
    """A JSON-mode value as compact YAML flow (``{max: 0%, hard: true}``), None entries left out."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_flow(v)}" for k, v in value.items() if v is not None)
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def default_text(field: FieldInfo) -> str:
    """The default as the spec would spell it; ``required`` or ``unset`` where there is none."""
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if value == "":
        return '`""`'
    if isinstance(value, tuple) and value and all(isinstance(v, models.ObjectiveTerm) for v in value):
        text = ", ".join(f"{{{v.direction}: {v.metric}}}" for v in value)
        return f"`{text}`" if len(value) == 1 else f"`[{text}]`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    dumped = TypeAdapter(field.rebuild_annotation()).dump_python(value, mode="json")
    text = _flow(dumped)
    if isinstance(value, BaseModel) and len(text) > 40:
        return f"[as below](#{_anchor(_section_of(type(value)).title)})"
    return f"`{text}`"


# ------------------------------------------------------------------------------------------------ render
def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _section_of(model: type[BaseModel]) -> Section:
    for section in _sections():
        if section.model is model:
            return section
    raise KeyError(f"{model.__name__} has no section in the spec reference")


def _docstring(model: type[BaseModel]) -> str:
    """The class docstring as Markdown paragraphs (reStructuredText ``code`` becomes `code`)."""
    text = inspect.cleandoc(model.__doc__ or "")
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    return "\n\n".join(p.replace("``", "`") for p in paragraphs)


def field_rows(model: type[BaseModel]) -> list[str]:
    rows = ["| key | written as | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if not field.description:
            raise ValueError(f"{model.__name__}.{name} has no description: add Field(description=...)")
        key = KEY_AS.get((model, name), f"`{name}`")
        kind = WRITTEN_AS.get((model, name)) or written_as(field.annotation, field.metadata)
        rows.append(f"| {key} | {_cell(kind)} | {_cell(default_text(field))} | {_cell(field.description)} |")
    return rows


def check_example(example: str) -> None:
    """Load BASE_SPEC with the example's keys replacing its own, through the real loader (raises SpecError)."""
    spec = yaml.safe_load(BASE_SPEC)
    spec.update(yaml.safe_load(example))
    load_spec_text("example.yaml", yaml.safe_dump(spec, sort_keys=False))


def _check_forms() -> None:
    for model, (_form, example) in MODEL_FORMS.items():
        model.model_validate(yaml.safe_load(example))  # a shown shorthand that does not parse is a bug
    for model, name in [*KEY_AS, *WRITTEN_AS]:
        if name not in model.model_fields:
            raise KeyError(f"{model.__name__}.{name} is gone: update KEY_AS / WRITTEN_AS")
    parsers: dict[str, Callable[[Any], Any]] = {"duration": parse_duration, "percentage": parse_fraction}
    for kind, examples, _meaning in UNITS:
        for value in re.findall(r"`([^`]+)`", examples) if kind in parsers else ():
            parsers[kind](yaml.safe_load(value))  # every example shown parses
    try:
        parse_fraction(5)
    except ValueError:
        pass
    else:
        raise AssertionError("the units table says a bare 5 is refused as a percentage; it is not any more")


def render() -> str:
    """The whole page. Raises when a model changed in a way the page cannot describe, or an example broke."""
    _check_forms()
    out = [
        f"# {TITLE}",
        "",
        "<!-- Generated by `python -m autotuner.docgen` from autotuner/spec/models.py: edit the models' "
        "descriptions, not this file. -->",
        "",
        "Every key a tuning spec can have, its type as you write it, its default, its bounds and what it means. "
        'Specs are Jinja2 templates rendered before parsing (`{{ env.VLLM_TAG | default("v0.11.0") }}`; an '
        "undefined variable is an error); `autotuner validate` reports every problem as `file:line:column: "
        "field.path: message`. Concepts: [concepts.md](concepts.md).",
        "",
        "## Units",
        "",
        "| kind | examples | how it is read |",
        "|---|---|---|",
        *(f"| {kind} | {examples} | {_cell(meaning)} |" for kind, examples, meaning in UNITS),
    ]
    for section in _sections():
        heading = section.title if " " in section.title or "`" in section.title else f"`{section.title}`"
        out += ["", "#" * section.level + " " + heading, ""]
        if section.model is not None and _docstring(section.model):
            out += [_docstring(section.model), ""]
        if section.text:
            out += [section.text, ""]
        if section.model is not None and section.model is not models.Choice:
            out += [*field_rows(section.model), ""]
        elif section.model is models.Choice:
            field = models.Choice.model_fields["values"]
            out += [f"Its values: {written_as(field.annotation, field.metadata)}; {field.description}.", ""]
        if section.example:
            check_example(section.example)
            out += ["```yaml", section.example.rstrip("\n"), "```", ""]
        while out[-1] == "":
            out.pop()
    return "\n".join(out) + "\n"
