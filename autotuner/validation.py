"""Loading spec files into valid, checked specs: the front door every command and the pytest plugin use.

Validation runs in two passes so that a person sees every problem at once:
1. ``spec.parse_spec_text``: the pydantic model (types, units, unknown keys, choices), its errors mapped to
   file:line:column;
2. checks across fields that need the whole spec and its search space: constraints against parameter names and
   against the grid, the baseline against the space, the scenario against the task, the launcher against what
   it needs, spec names unique across files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .constraint import ConstraintError
from .engines.runtimes import profile_for
from .scenario import validate_scenario
from .space import MAX_ENUMERATION, Config, Space
from .spec import SpecError, SpecProblem, TuningSpec
from .spec.loader import SPEC_SUFFIXES, parse_spec_text, read_text
from .spec.models import HF_CACHE_TARGET, unknown
from .spec.source import SpecSource


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec and where it came from; ``digest`` identifies the rendered content (to spot a changed spec)."""

    spec: TuningSpec
    path: Path
    digest: str
    space: Space
    source: SpecSource
    flags_checked_with: str | None = None  # what the engine flags were checked with, or why they were not


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Spec files under the given files and folders (folders recursively), sorted, each once."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def load_spec(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> LoadedSpec:
    """Load and check one spec file; raise ``SpecError`` listing every problem found."""
    return load_spec_text(str(path), read_text(path), environ)


def load_spec_text(file: str, text: str, environ: Mapping[str, str] | None = None) -> LoadedSpec:
    source, spec, digest = parse_spec_text(file, text, environ)
    space, problems = check_spec(source, spec)
    if problems:
        raise SpecError(problems)
    return LoadedSpec(spec, Path(file), digest, space, source)


def load_specs(
    paths: Sequence[str | os.PathLike[str]],
    environ: Mapping[str, str] | None = None,
    *,
    engine_flags: bool = False,
) -> list[LoadedSpec]:
    """Load every spec under ``paths``; all problems of all files are collected before raising.

    ``engine_flags`` also checks every flag against the installed engines' own parsers (seconds for vLLM), once
    for all specs of a runtime; an engine that is not installed leaves its specs "not checked", never invalid.
    """
    files = discover(paths)
    if not files:
        where = ", ".join(str(p) for p in paths) or "."
        raise SpecError([SpecProblem(where, 1, 1, (), "no spec files (*.yaml, *.yml) found")])
    loaded: list[LoadedSpec] = []
    problems: list[SpecProblem] = []
    for file in files:
        try:
            loaded.append(load_spec(file, environ))
        except SpecError as exc:
            problems.extend(exc.problems)
    first: dict[str, LoadedSpec] = {}
    for item in loaded:
        other = first.setdefault(item.spec.name, item)
        if other is not item:
            message = f"spec name {item.spec.name!r} is already used by {other.path}"
            problems.append(item.source.problem(("name",), message))
    if engine_flags and loaded:
        from .flag_validation import engine_flag_problems  # runs engines' parsers: only when asked

        report = engine_flag_problems([(item.source, item.spec) for item in loaded])
        problems.extend(report.problems)
        loaded = [dataclasses.replace(i, flags_checked_with=report.checked_with.get(i.source.file)) for i in loaded]
    if problems:
        raise SpecError(problems)
    return loaded


# ---------------------------------------------------------------------------------------- cross-field checks
def check_spec(source: SpecSource, spec: TuningSpec) -> tuple[Space, list[SpecProblem]]:
    """Checks that need the whole, typed spec. Returns the space (possibly without bad constraints)."""
    problems: list[SpecProblem] = []
    add = problems.append

    for index, scenario in enumerate(spec.workload.scenarios):
        try:
            validate_scenario(scenario, spec.workload.task)
        except ValueError as exc:
            add(source.problem(("workload", "scenarios", index), str(exc)))

    for name in spec.engine.args:
        if name in spec.parameters:
            add(
                source.problem(
                    ("engine", "args", name), f"{name!r} is also a search parameter: keep it in one place", at_key=True
                )
            )

    _check_launcher_flags(source, spec, problems)
    engine = spec.engine
    if engine.launcher == "endpoint":
        if engine.url is None:
            add(source.problem(("engine",), "launcher endpoint needs engine.url, the server to benchmark"))
        if engine.args:
            message = "launcher endpoint starts nothing, so fixed flags would be silently ignored: remove engine.args"
            add(source.problem(("engine", "args"), message))
        launch_params = [n for n in spec.parameters if not n.startswith("request.")]
        for name in launch_params:
            add(
                source.problem(
                    ("parameters", name),
                    "launcher endpoint starts nothing, so launch flags cannot be tuned; use request.* "
                    "parameters or another launcher",
                    at_key=True,
                )
            )
    elif not spec.parameters:
        add(
            source.problem(
                ("parameters",) if "parameters" in source.data else (),
                "the search space is empty: add at least one parameter, e.g. n-parallel: [1, 2, 4]",
            )
        )
    elif engine.url is not None:
        add(
            source.problem(
                ("engine", "url"), f"engine.url is only for launcher endpoint (launcher is {engine.launcher})"
            )
        )
    if engine.python is not None and engine.launcher not in ("process", "docker"):
        message = f"engine.python is only used by the process and docker launchers (launcher is {engine.launcher})"
        add(source.problem(("engine", "python"), message))
    _check_kubernetes_settings(source, spec, problems)
    _check_docker_settings(source, spec, problems)
    if engine.image is not None and engine.launcher in ("process", "endpoint"):
        add(
            source.problem(
                ("engine", "image"),
                f"engine.image is only used by the docker and kubernetes launchers (launcher is {engine.launcher})",
            )
        )

    space = _build_space(source, spec, problems)
    _check_grid(source, spec, space, problems)
    _check_baseline(source, spec, space, problems)
    return space, problems


# Other spellings the engines' parsers take for a flag the launcher sets: SGLang's --model-path is also --model.
_LAUNCHER_FLAG_ALIASES: dict[str, dict[str, str]] = {"sglang": {"model": "model-path"}}


def launcher_flags(runtime: str) -> dict[str, str]:
    """The flags every launcher sets on the engines it starts (no dashes), each with the message refusing it.

    Launchers start engines with ``profile.server_args``: the model, its served name, the host and a port of their
    own choosing, then the spec's flags. A spec's ``port: 9000`` came after the launcher's ``--port`` and won, so
    the engine listened where the tool never looked (a readiness timeout reported as the config's failure); a
    ``served-model-name`` made every request a 404. So these are refused, naming the spec field that sets them.
    """
    profile = profile_for(runtime)
    served = "set by the launcher (from model.served_name): set model.served_name instead"
    owned = {
        "host": "set by the launcher (the address the tool reaches the engine on): remove it",
        "port": "set by the launcher (a free port for each engine it starts): remove it",
    }
    model = profile.model_flag.removeprefix("--")
    if profile.served_name_flag is not None:
        owned[model] = "set by the launcher (from model.id): set model.id instead"
        owned[profile.served_name_flag.removeprefix("--")] = served
    else:  # the engine serves under its model argument (the sim): that is the served name
        owned[model] = served
    for alias, primary in _LAUNCHER_FLAG_ALIASES.get(runtime, {}).items():
        owned[alias] = owned[primary]
    return owned


def _check_launcher_flags(source: SpecSource, spec: TuningSpec, problems: list[SpecProblem]) -> None:
    """Fixed args and parameters must not set what the launcher sets (see ``launcher_flags``). vLLM also reads
    ``served_model_name`` as ``served-model-name`` (underscores count as dashes), and vLLM's and SGLang's parsers
    complete an abbreviation (``served-model`` is ``--served-model-name``), so a prefix of such a flag is refused
    too (no engine flag is a prefix of one of them)."""
    if spec.engine.launcher == "endpoint":
        return  # starts nothing: its args and launch parameters are refused as such
    owned = launcher_flags(spec.engine.runtime)
    located: list[tuple[tuple[str, ...], str]] = [(("engine", "args"), name) for name in spec.engine.args]
    located += [(("parameters",), n) for n in spec.parameters if not n.startswith(("env.", "request."))]
    for section, name in located:
        spelled = name.replace("_", "-")
        message = owned.get(spelled)
        if message is not None:
            problems.append(source.problem((*section, name), f"{name!r} is {message}", at_key=True))
            continue
        completed = sorted(flag for flag in owned if flag.startswith(spelled))
        if completed:
            text = f"{name!r} abbreviates {completed[0]!r}, which is {owned[completed[0]]}"
            problems.append(source.problem((*section, name), text, at_key=True))


def _check_kubernetes_settings(source: SpecSource, spec: TuningSpec, problems: list[SpecProblem]) -> None:
    engine = spec.engine
    if not engine.kubernetes:
        return
    if engine.launcher != "kubernetes":
        message = f"engine.kubernetes is only used by the kubernetes launcher (launcher is {engine.launcher})"
        problems.append(source.problem(("engine", "kubernetes"), message))
        return
    from .launch.inferenceservice import ClusterSettings, ManifestError  # launcher knowledge, imported on demand

    try:
        ClusterSettings.from_extra(engine.kubernetes)
    except ManifestError as exc:
        problems.append(source.problem(("engine", "kubernetes"), str(exc)))


def _check_docker_settings(source: SpecSource, spec: TuningSpec, problems: list[SpecProblem]) -> None:
    """``engine.docker`` only with the docker launcher, and no two mounts at one place in the container (Docker
    refuses the container then, at the first trial, with "Duplicate mount point")."""
    engine = spec.engine
    written = source.data.get("engine") if isinstance(source.data, dict) else None
    if isinstance(written, dict) and "docker" in written and engine.launcher != "docker":
        message = f"engine.docker is only used by the docker launcher (launcher is {engine.launcher})"
        problems.append(source.problem(("engine", "docker"), message))
        return
    taken: dict[str, str] = {}
    if engine.docker.mounts_hf_cache(spec.model):
        taken[HF_CACHE_TARGET] = "the Hugging Face cache (engine.docker.hf_cache)"
    for index, mount in enumerate(engine.docker.mounts):
        target = mount.target.rstrip("/") or "/"
        if target in taken:
            message = f"two mounts at {target} in the container: this one and {taken[target]}"
            problems.append(source.problem(("engine", "docker", "mounts", index, "target"), message))
        taken.setdefault(target, f"engine.docker.mounts[{index}]")


def _build_space(source: SpecSource, spec: TuningSpec, problems: list[SpecProblem]) -> Space:
    good: list[str] = []
    for index, text in enumerate(spec.constraints):
        try:
            Space.from_spec(spec.model_copy(update={"constraints": (text,)}))
            good.append(text)
        except ConstraintError as exc:
            problems.append(source.problem(("constraints", index), str(exc.args[0])))
    return Space.from_spec(spec.model_copy(update={"constraints": tuple(good)}))


def _check_grid(source: SpecSource, spec: TuningSpec, space: Space, problems: list[SpecProblem]) -> None:
    if spec.search.strategy == "grid":
        for name in space.continuous:
            problems.append(
                source.problem(
                    ("parameters", name),
                    "strategy grid cannot enumerate a float range without step: add step, or use strategy random/tpe",
                )
            )
    if not space.dimensions:
        return
    if not space.is_finite and spec.search.max_trials is None and spec.search.timeout is None:
        problems.append(
            source.problem(
                ("search",), "the space is continuous: set search.max_trials or search.timeout so the search ends"
            )
        )
    if not space.constraints or not space.is_finite:
        return
    try:
        for _ in _limited(space, MAX_ENUMERATION):
            return  # at least one config satisfies every constraint
    except ConstraintError as exc:
        problems.append(source.problem(("constraints",), str(exc)))
        return
    except _TooMany:
        return  # too large to prove empty; the study reports it if it finds nothing
    total = space.grid_total()
    problems.append(
        source.problem(("constraints",), f"the constraints exclude every one of the {total} configs in the grid")
    )


class _TooMany(Exception):
    pass


def _limited(space: Space, limit: int) -> Iterable[Config]:
    total = space.grid_total() or 0
    if total > limit:
        raise _TooMany()
    return space.grid()


def _check_baseline(source: SpecSource, spec: TuningSpec, space: Space, problems: list[SpecProblem]) -> None:
    baseline = spec.search.baseline
    if baseline is None:
        return
    known = list(spec.parameters)
    if not known:
        return  # the empty space is reported already
    bad = False
    for name in baseline:
        if name not in spec.parameters:
            problems.append(
                source.problem(
                    ("search", "baseline", name),
                    unknown("unknown parameter", name, known, f"parameters: {', '.join(known) or 'none'}"),
                    at_key=True,
                )
            )
            bad = True
    if bad:
        return
    try:
        violated = space.violated(Config.of(baseline))
    except ConstraintError as exc:
        problems.append(source.problem(("search", "baseline"), str(exc)))
        return
    for constraint in violated:
        problems.append(
            source.problem(("search", "baseline"), f"the baseline config violates constraint {constraint.text!r}")
        )
