"""Spec problems found by the engines' own argument parsers: unknown flags and values they refuse, located.

Why a pass of its own: the other spec checks are pure; this one asks an installed engine (vLLM's import alone
takes seconds), so it runs once for all specs being validated, with one parser build per (runtime, interpreter)
(``engines.flags.check_many``). Every fixed arg and every value a parameter can take is checked: each value of a
list, both ends of a range. An engine that is not installed leaves its specs "not checked", never invalid, and
the report says which interpreter was tried, so a person knows what ``ok`` covered.

A docker spec is checked by a local parser when there is one (the report then warns that the image may hold
another release), else by the ``--help`` of the engine in its own image when that image is in the local Docker
daemon (``engines.image_help``): the image the trials will run, read without pulling anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .engines.flagcheck import UNKNOWN
from .engines.flags import FlagProblem, check_many
from .engines.profile import FlagValue
from .engines.runtimes import profile_for
from .spec import Choice, SpecProblem, TuningSpec
from .spec.problems import Path
from .spec.source import SpecSource

# Launchers whose engine takes flags. For docker and kubernetes a local parser stands in for the image's when there
# is one; without one, a docker spec's image answers through its --help (kubernetes images may not be local).
LAUNCHING = ("process", "docker", "kubernetes")


@dataclass(frozen=True)
class FlagReport:
    """Problems for every spec, and per spec file what its flags were checked with (or why they were not)."""

    problems: list[SpecProblem]
    checked_with: dict[str, str]


def engine_flag_problems(specs: Sequence[tuple[SpecSource, TuningSpec]]) -> FlagReport:
    """Check the flags of ``specs`` (source and typed spec of each) against their engines' parsers."""
    groups: dict[tuple[str, str | None, str | None, str | None], list[tuple[SpecSource, TuningSpec]]] = {}
    for source, spec in specs:
        engine = spec.engine
        if engine.launcher in LAUNCHING:
            python = engine.python if engine.launcher == "process" else None
            image = container_python = None
            if engine.launcher == "docker":  # the image and interpreter the docker launcher will run
                image = engine.image or profile_for(engine.runtime).default_image
                container_python = engine.python
            groups.setdefault((engine.runtime, python, image, container_python), []).append((source, spec))
    problems: list[SpecProblem] = []
    checked_with: dict[str, str] = {}
    for (runtime, python, image, container_python), members in groups.items():
        located = [list(flag_values(spec)) for _, spec in members]
        checks = check_many(
            runtime,
            [[(name, value) for name, value, _ in values] for values in located],
            python,
            image=image,
            container_python=container_python,
        )
        for (source, spec), values, check in zip(members, located, checks, strict=True):
            note = check.checked_with
            if check.available and spec.engine.launcher != "process" and check.image_id is None:
                note += f"; the engine in {spec.engine.image or 'the default image'} may be another release"
            checked_with[source.file] = note
            where = {(name, _key(value)): path for name, value, path in values}
            found = [_located(source, where, problem) for problem in check.problems]
            problems.extend(dict.fromkeys(found))  # an unknown parameter is one problem, whatever its values
    return FlagReport(problems, checked_with)


def flag_values(spec: TuningSpec) -> Iterator[tuple[str, FlagValue, Path]]:
    """Each (flag, value) a trial of ``spec`` can pass, with where it is written; env.*/request.* included
    (``check_many`` skips them)."""
    for name, value in spec.engine.args.items():
        yield name, value, ("engine", "args", name)
    for name, dimension in spec.parameters.items():
        if isinstance(dimension, Choice):
            for index, choice in enumerate(dimension.values):
                yield name, choice, ("parameters", name, index)
        else:
            yield name, dimension.low, ("parameters", name, "low")
            yield name, dimension.high, ("parameters", name, "high")


def _key(value: FlagValue) -> str:
    return f"{type(value).__name__}:{value!r}"  # True and 1 are different values here


def _located(source: SpecSource, where: dict[tuple[str, str], Path], problem: FlagProblem) -> SpecProblem:
    path = where.get((problem.name, _key(problem.value)), ())
    if problem.kind == UNKNOWN and path[:1] == ("parameters",):
        path = path[:2]  # an unknown name is the parameter's key, not one of its values
    message = problem.message.removeprefix(f"{problem.name}: ")  # the located problem names the flag already
    return source.problem(path, message, at_key=problem.kind == UNKNOWN)
