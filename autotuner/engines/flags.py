"""Validate a spec's engine flags against the engine's own argument parser, before any trial runs.

Why: a misspelt flag (``max-num-seq``) or a value outside an engine's choices would otherwise be found only when
a trial launches, after minutes of model loading, and then only as a failed trial. The authority on what a flag
means is the engine's parser of the installed release (flags move between releases), so that parser is asked:

- ``llamacpp`` and ``sim``: our own parsers, in this process;
- ``vllm`` and ``sglang``: their parsers, built by the engine's own interpreter running ``flagcheck.py`` by path
  (the engines live in their own environments). Importing vLLM takes seconds, so all flags of all specs of one
  runtime are checked in one subprocess call (:func:`check_many`), and answers are cached per
  (runtime, interpreter) for the life of the process;
- a spec whose engine runs in a container image (docker launcher) while no local interpreter has the engine (or
  it does not import there): the ``--help`` of the server in that image, if the image is in the local Docker
  daemon (:mod:`.image_help`, never pulled). A help text shows names, switches and ``{a,b}`` choices, not value
  types, so this check covers less than a parser's; the report says which one was used.

An engine that is not installed is "not checked", never an error: the result says which interpreter (and which
image) was tried. ``env.*`` and ``request.*`` names are not engine flags and are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from . import flagcheck
from .profile import FlagValue
from .runtimes import profile_for
from .scripts import script_argv

NAMESPACES = ("env.", "request.")
DEFAULT_VENVS = {"vllm": "vllm-cpu", "sglang": "sglang"}
PYTHON_ENV = {"vllm": "AUTOTUNER_VLLM_PYTHON", "sglang": "AUTOTUNER_SGLANG_PYTHON"}
VENV_ENV = {"vllm": "AUTOTUNER_VLLM_VENV", "sglang": "AUTOTUNER_SGLANG_VENV"}
SUBPROCESS_TIMEOUT = 600.0  # importing vLLM takes seconds to a minute on a small machine

Pair = tuple[str, FlagValue]
Key = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class FlagProblem:
    """One flag value the engine's parser refuses, with what to write instead where the parser tells."""

    name: str
    value: FlagValue
    kind: str  # flagcheck.UNKNOWN, INVALID_CHOICE, INVALID_VALUE or NOT_NEGATABLE
    message: str
    suggestion: str | None = None  # the closest flag name (no dashes), for unknown flags
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FlagCheck:
    """The verdict on a set of flags; ``available`` is False when the engine's parser could not be built."""

    runtime: str
    available: bool
    checked_with: str  # e.g. "vllm-cpu 0.32.0 (/root/.cache/.../bin/python)" or why nothing was checked
    problems: tuple[FlagProblem, ...] = ()
    skipped: tuple[str, ...] = ()  # env.* and request.* names
    deprecated: tuple[str, ...] = ()  # accepted, but the engine marks them deprecated (vLLM does)
    image_id: str | None = None  # set when the flags were checked with the --help of this image (the spec's own)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Answers:
    """What one parser said so far, per rendered flag; ``engine`` is None while it could not be built.

    ``source`` replaces "engine (interpreter)" in reports when the answers came from elsewhere (an image's help).
    """

    engine: str | None
    reason: str = ""
    results: dict[Key, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None
    image_id: str | None = None


_CACHE: dict[tuple[str, str], _Answers] = {}
_LOCK = threading.Lock()


def engine_python(runtime: str, python: str | None = None) -> str | None:
    """The interpreter that has ``runtime`` installed: the spec's, then the environment's, then the default venv,
    then this interpreter if the engine imports here. None when there is nothing to try."""
    if python:
        return python
    variable = PYTHON_ENV.get(runtime)
    if variable and os.environ.get(variable):
        return os.environ[variable]
    if runtime in DEFAULT_VENVS:
        venv = os.environ.get(VENV_ENV[runtime]) or str(
            Path.home() / ".cache" / "autotuner" / "venvs" / DEFAULT_VENVS[runtime]
        )
        candidate = Path(venv) / "bin" / "python"
        if candidate.exists():
            return str(candidate)
        if find_spec(runtime) is not None:
            return sys.executable
    return None


def check_flags(
    runtime: str,
    flags: Mapping[str, FlagValue],
    python: str | None = None,
    *,
    image: str | None = None,
    container_python: str | None = None,
) -> FlagCheck:
    """Check one spec's flags (fixed args and one value per parameter); see :func:`check_many` for many."""
    return check_many(runtime, [list(flags.items())], python, image=image, container_python=container_python)[0]


def check_values(
    runtime: str,
    pairs: Iterable[Pair],
    python: str | None = None,
    *,
    image: str | None = None,
    container_python: str | None = None,
) -> FlagCheck:
    """Like :func:`check_flags`, but a name may come with several values (each value of a search parameter)."""
    return check_many(runtime, [list(pairs)], python, image=image, container_python=container_python)[0]


def check_many(
    runtime: str,
    flag_sets: Sequence[Sequence[Pair]],
    python: str | None = None,
    *,
    image: str | None = None,
    container_python: str | None = None,
) -> list[FlagCheck]:
    """Check several specs' flags of one runtime with one parser build (one subprocess for vLLM/SGLang).

    ``python`` is a local interpreter with the engine (see :func:`engine_python`). ``image`` is the container
    image the specs run in (docker launcher) and ``container_python`` the interpreter inside it: when no local
    interpreter answers, that image's ``--help`` is read instead, if the image is in the local Docker daemon.
    """
    profile = profile_for(runtime)
    rendered = [[(name, value, profile.render_flag(name, value)) for name, value in pairs] for pairs in flag_sets]
    wanted = list(
        dict.fromkeys((name, tuple(tokens)) for items in rendered for name, _, tokens in items if _is_flag(name))
    )
    answers, where = _answers(runtime, python, wanted)
    if answers.engine is None and image is not None:
        answers = _image_answers(runtime, image, container_python, wanted, answers.reason)
    if answers.engine is None:
        return [
            FlagCheck(runtime, False, f"not checked: {answers.reason}", skipped=_skipped(pairs)) for pairs in flag_sets
        ]
    checks = []
    for pairs, items in zip(flag_sets, rendered, strict=True):
        problems = []
        deprecated: dict[str, None] = {}
        for name, value, tokens in items:
            if not _is_flag(name):
                continue
            result = answers.results[(name, tuple(tokens))]
            if not result.get("ok"):
                problems.append(_problem(runtime, name, value, result))
            elif result.get("deprecated"):
                deprecated[name] = None
        where_from = answers.source or f"{answers.engine} ({where})"
        checks.append(
            FlagCheck(runtime, True, where_from, tuple(problems), _skipped(pairs), tuple(deprecated), answers.image_id)
        )
    return checks


def _is_flag(name: str) -> bool:
    return not name.startswith(NAMESPACES)


def _skipped(pairs: Sequence[Pair]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name, _ in pairs if not _is_flag(name)))


def _problem(runtime: str, name: str, value: FlagValue, result: Mapping[str, Any]) -> FlagProblem:
    kind = str(result.get("kind", flagcheck.INVALID_VALUE))
    choices = tuple(str(c) for c in result["choices"]) if result.get("choices") else None
    suggestion = str(result["suggestion"]).removeprefix("--") if result.get("suggestion") else None
    if kind == flagcheck.UNKNOWN:
        hint = f": did you mean {suggestion!r}?" if suggestion else ""
        message = f"unknown {runtime} flag {name!r}{hint}"
    elif kind == flagcheck.INVALID_CHOICE and choices:
        message = f"{name}: invalid value {value!r} (choose from {', '.join(choices)})"
    else:
        message = f"{name}: {result.get('message', 'refused by the engine parser')}"
    return FlagProblem(name, value, kind, message, suggestion, choices)


# --- where the answers come from -------------------------------------------------------------------------------


def _in_process_parsers() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from . import llamacpp_server, sim_server

    return {"llamacpp": llamacpp_server.build_parser, "sim": sim_server.build_parser}


def _answers(runtime: str, python: str | None, wanted: Sequence[Key]) -> tuple[_Answers, str]:
    """The cached answers for ``wanted``, asking the parser only about flags it was not asked about before."""
    builders = _in_process_parsers()
    if runtime in builders:
        where = "in-process"
    else:
        interpreter = engine_python(runtime, python)
        if interpreter is None:
            variable = PYTHON_ENV.get(runtime, "engine.python")
            reason = f"no {runtime} interpreter found (set engine.python or {variable})"
            return _Answers(None, reason), ""
        where = interpreter
    with _LOCK:
        answers = _CACHE.get((runtime, where))
        missing = [key for key in wanted if answers is None or key not in answers.results]
        if answers is not None and (answers.engine is None or not missing):
            return answers, where
        if runtime in builders:
            parser = builders[runtime]()
            fresh = _Answers(
                f"{runtime} parser", results=dict(zip(missing, flagcheck.check_all(parser, missing), strict=True))
            )
        else:
            fresh = _ask_subprocess(runtime, where, missing)
        if answers is None or answers.engine is None:
            answers = fresh
        else:
            answers.results.update(fresh.results)
        _CACHE[(runtime, where)] = answers
        return answers, where


def _image_answers(
    runtime: str, image: str, container_python: str | None, wanted: Sequence[Key], local_reason: str
) -> _Answers:
    """Answers from the ``--help`` of the engine in ``image`` (no local interpreter answered: ``local_reason``).

    Not cached here: :mod:`.image_help` keeps each image's parsed help, and checking flags against it is cheap.
    """
    from . import help_text, image_help  # the Docker SDK is imported only when an image is asked

    try:
        found = image_help.image_help(runtime, image, container_python)
    except image_help.HelpUnavailable as unavailable:
        if local_reason.startswith(f"no {runtime} interpreter found"):  # engine.python is the image's, for docker
            local = f"no local {runtime} interpreter either (set {PYTHON_ENV.get(runtime, 'engine.python')})"
        else:
            local = f"locally: {local_reason}"
        return _Answers(None, f"{unavailable}; {local}")
    results = dict(zip(wanted, help_text.check_all(found.help, wanted), strict=True))
    return _Answers(runtime, results=results, source=found.describe(), image_id=found.image_id)


def _ask_subprocess(runtime: str, python: str, flags: Sequence[Key]) -> _Answers:
    """Run flagcheck.py with the engine's interpreter; any failure to get an answer means "not available"."""
    argv = script_argv(python, Path(flagcheck.__file__), runtime)
    payload = json.dumps([[name, list(tokens)] for name, tokens in flags])
    try:
        done = subprocess.run(  # noqa: S603 - an argument list
            argv, input=payload, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False
        )
    except FileNotFoundError:
        return _Answers(None, f"{runtime} interpreter {python} not found")
    except subprocess.TimeoutExpired:
        return _Answers(None, f"{python} took more than {SUBPROCESS_TIMEOUT:.0f}s to build the {runtime} parser")
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return _Answers(None, f"{python} exited with {done.returncode} without an answer: {tail}")
    if not answer.get("available"):
        return _Answers(None, f"{runtime} does not import with {python}: {answer.get('reason')}")
    results = answer.get("results") or []
    if len(results) != len(flags):
        return _Answers(None, f"{python} answered {len(results)} of {len(flags)} flags (another flagcheck.py?)")
    return _Answers(str(answer["engine"]), results=dict(zip(flags, results, strict=True)))


def clear_cache() -> None:
    """Forget every parser's answers (tests; a process that installs an engine while it runs).

    Images' helps are kept: an image id names fixed content (``image_help.clear_cache`` forgets them).
    """
    with _LOCK:
        _CACHE.clear()
