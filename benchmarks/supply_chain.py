"""Do the dependency ranges in pyproject.toml resolve on a fresh machine, today?

Asks pip's resolver (``pip install --dry-run --ignore-installed --report``) for the project with the extras the
README installs, from the package index, ignoring what this machine has installed, and prints the version it picks
for each runtime dependency next to the range it must satisfy. Needs access to the package index (PyPI); nothing
is installed. The offline half (ranges, ``pip check``) is ``tests/reliability/test_supply_chain.py``.

    python benchmarks/supply_chain.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(text) for text in project["dependencies"]]
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--report", str(report), f"{REPO}[llamacpp,test]",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            print(f"the ranges do not resolve:\n{result.stderr[-3000:]}")
            return 1
        chosen = {
            canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]
        }
    bad = 0
    for requirement in wanted:
        version = chosen.get(canonicalize_name(requirement.name), "-")
        ok = version != "-" and requirement.specifier.contains(version, prereleases=True)
        bad += not ok
        print(f"{requirement.name:<18} {str(requirement.specifier):<12} -> {version:<12} {'' if ok else 'NOT OK'}")
    print(f"{len(chosen)} distributions resolved for a fresh install; {bad} runtime range(s) not satisfied")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
