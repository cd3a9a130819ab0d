"""Spec text -> typed ``TuningSpec``, with pydantic's errors turned into file:line:column problems.

Checks that need the search space (constraints against the grid, the baseline) live in ``autotuner.validation``,
which is what commands call; this module knows nothing of spaces.
"""

from __future__ import annotations

import hashlib
import os
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .models import TuningSpec, did_you_mean, unknown
from .problems import Path as DataPath
from .problems import SpecError, SpecProblem
from .source import SourceError, SpecSource, read_spec_source

SPEC_SUFFIXES = (".yaml", ".yml")


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text, or a ``SpecError`` that says why it cannot be read."""
    file = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem(file, 1, 1, (), "no such file")]) from None
    except IsADirectoryError:
        raise SpecError([SpecProblem(file, 1, 1, (), "is a folder, not a spec file")]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([SpecProblem(file, 1, 1, (), f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise SpecError([SpecProblem(file, 1, 1, (), f"cannot read: {exc.strerror}")]) from None


def parse_spec_text(
    file: str, text: str, environ: Mapping[str, str] | None = None
) -> tuple[SpecSource, TuningSpec, str]:
    """Render, parse and type-check one spec; returns its source map, the typed spec and a content digest."""
    try:
        source = read_spec_source(file, text, environ)
    except SourceError as exc:
        raise SpecError([exc.problem]) from None
    if not isinstance(source.data, dict):
        kind = type(source.data).__name__
        raise SpecError([source.problem((), f"a spec is a mapping (name: ..., model: ...), not a {kind}")])
    try:
        spec = TuningSpec.model_validate(source.data)
    except ValidationError as exc:
        raise SpecError(_pydantic_problems(source, exc)) from None
    digest = hashlib.sha256(repr(sorted(_flatten(source.data))).encode()).hexdigest()[:16]
    return source, spec, digest


def _flatten(data: Any, prefix: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}.{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _flatten(value, f"{prefix}[{index}]")
    else:
        yield prefix, f"{type(data).__name__}:{data!r}"


# ------------------------------------------------------------------------------------------- pydantic -> problems
def _data_path(data: Any, loc: Sequence[str | int]) -> tuple[DataPath, bool]:
    """Translate pydantic's loc into the YAML path, dropping union tags and model-internal field names.

    Returns the path and whether the last element names something not written in the file (a missing field or
    a mapping key that failed validation, which pydantic reports as ``[key]``).
    """
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == "[key]":
            return tuple(path), True
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif last and isinstance(part, str) and isinstance(current, dict) and not _is_internal(part):
            path.append(part)
            return tuple(path), False
    return tuple(path), False


def _is_internal(part: str) -> bool:
    return part in ("choice", "range", "limits", "values", "direction", "metric")


def _pydantic_problems(source: SpecSource, error: ValidationError) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    seen: set[tuple[DataPath, str]] = set()
    errors = error.errors(include_url=False)
    # pydantic adds "should have at least 1 item" for a list whose only item failed: the item's error says it all.
    failed = {tuple(err["loc"][:1]) for err in errors if err["type"] != "too_short"}
    errors = [err for err in errors if not (err["type"] == "too_short" and tuple(err["loc"][:1]) in failed)]
    for err in errors:
        path, is_key = _data_path(source.data, err["loc"])
        message = _message(source.data, path, err)
        at_key = is_key or err["type"] == "extra_forbidden"
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append(source.problem(path, message, at_key=at_key))
    return problems


def _message(data: Any, path: DataPath, err: Mapping[str, Any]) -> str:
    kind = err["type"]
    text = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    if kind == "extra_forbidden" and path:
        key = str(path[-1])
        allowed = _fields_at(TuningSpec, path[:-1])
        home = _section_of(key)
        if home and home != (path[0] if len(path) > 1 else None):
            return f"unknown key {key!r}: it belongs in {home}"
        hint = did_you_mean(key, sorted(allowed)).strip()
        return f"unknown key {key!r}: " + (hint or f"(known keys: {', '.join(sorted(allowed))})")
    if kind == "missing" and path:
        return f"missing required field {path[-1]!r}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        given = err.get("input")
        return unknown("unknown value", str(given), choices, f"choose from {', '.join(choices)}")
    given = err.get("input")
    if kind.startswith(("int_", "float_", "bool_", "string_", "greater_", "less_")) and isinstance(
        given, (str, int, float, bool)
    ):
        shown = repr(given) if len(repr(given)) < 60 else repr(given)[:57] + "..."
        return f"{text} (got {shown})"
    return text


def _model_fields(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, Annotated, tuples)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    models: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        models.extend(_model_fields(arg))
    return models


def _fields_at(model: type[BaseModel], path: DataPath) -> set[str]:
    """The keys allowed at ``path`` (to suggest the right one for a typo)."""
    candidates: list[type[BaseModel]] = [model]
    for part in path:
        if isinstance(part, int):
            continue
        following: list[type[BaseModel]] = []
        for candidate in candidates:
            field = candidate.model_fields.get(str(part))
            if field is not None:
                following.extend(_model_fields(field.annotation))
        candidates = following or candidates
    return {
        name
        for candidate in candidates
        for name in candidate.model_fields
        if name not in ("limits", "direction", "metric", "values")
    }


def _section_of(key: str) -> str | None:
    """The top-level section that has a field called ``key`` (for "max_trials belongs in search")."""
    for section, field in TuningSpec.model_fields.items():
        for model in _model_fields(field.annotation):
            if key in model.model_fields:
                return section
    return None
