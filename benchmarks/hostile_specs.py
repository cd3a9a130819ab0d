"""Malformed and hostile tuning specs: a generated corpus, and the front doors it is pushed through.

Specs come from pull requests, so a spec is untrusted input. Every case must end in one of two ways:

- ``refused``: a clear, located error (``file:line:column: path: message``), exit code 2, no traceback, within a
  few seconds, nothing written or executed;
- ``inert``: accepted (a shell metacharacter is a legal string value), but nothing is ever executed from it and
  nothing is written outside the report dir.

The corpus is generated in code (deterministic, no randomness): wrong types at every field, huge values, deep
nesting, YAML alias bombs, template injection and resource bombs, shell metacharacters in flag values, names and
paths, flags the launcher sets itself (port, host, model), path traversal, and control characters aimed at CI
logs. It goes through:

1. ``autotuner validate`` in-process (``cli.main``), all of it (fast): exit code, message format, no traceback;
2. the real ``autotuner`` console script (``validate``) and ``python -m autotuner tune`` on a sample, in a sandbox
   folder listed before and after, with marker files that a shell would create;
3. ``pytest --tune`` on a smaller sample (when the plugin is installed).

    python benchmarks/hostile_specs.py            # everything; prints counts per category and front door
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

LOCATED = re.compile(r"^(?P<file>[^\n:]+\.ya?ml):(?P<line>\d+):(?P<column>\d+): ", re.M)
SLOW_SECONDS = 8.0  # a refusal that takes longer is a finding (the template deadline is 5 s)


@dataclass(frozen=True)
class Case:
    name: str  # unique, usable as a file name
    category: str
    text: str
    expect: str  # "refused" or "inert" (either outcome is fine, but nothing may run or leak)
    tune: bool = False  # also run through `autotuner tune` (costly when accepted: it launches engines)
    # Refused only by the engine's own flag parser, which `validate` runs and `tune` does not (there the trials
    # fail with invalid-argument instead: failures are data).
    engine_flags: bool = False


# ----------------------------------------------------------------------------------------------- the corpus
def base() -> dict[str, Any]:
    """A valid sim spec as data: each case changes one place."""
    return {
        "name": "hostile",
        "description": "a spec to break",
        "model": {"id": "builtin:smollm2"},
        "engine": {
            "runtime": "sim",
            "launcher": "process",
            "args": {"time-scale": 0.05, "decode-step-ms": 5},
            "env": {},
            "startup_timeout": "20s",
            "gpus": 0,
        },
        "parameters": {"max-num-seqs": [1, 2]},
        "constraints": ["max-num-seqs <= 8"],
        "workload": {
            "scenarios": ["D(32,16)"],
            "concurrency": [2],
            "max_requests": 4,
            "max_time": "1m",
            "warmup_requests": 0,
        },
        "slo": {"ttft": {"p90": "10s"}, "error_rate": "10%"},
        "objective": {"maximize": "output_throughput"},
        "search": {"strategy": "grid", "max_trials": 2, "seed": 0, "baseline": {"max-num-seqs": 1}, "racing": False},
    }


def with_value(path: tuple[str, ...], value: Any) -> str:
    data = base()
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)


# Where a type is checked, and which kinds of value may legitimately pass there ("any" accepts everything).
FIELDS: dict[tuple[str, ...], set[str]] = {
    ("name",): {"str"},
    ("description",): {"str"},
    ("model",): set(),
    ("model", "id"): {"str"},
    ("engine",): set(),
    ("engine", "runtime"): set(),
    ("engine", "launcher"): set(),
    ("engine", "args"): {"map"},
    ("engine", "env"): {"map"},
    ("engine", "startup_timeout"): {"number", "big"},
    ("engine", "gpus"): {"bool"},
    ("parameters",): set(),
    ("parameters", "max-num-seqs"): {"scalar-list"},
    ("constraints",): {"list"},
    ("workload",): set(),
    ("workload", "scenarios"): set(),
    ("workload", "concurrency"): set(),
    ("workload", "max_requests"): {"bool"},
    ("workload", "max_time"): {"number", "big"},
    ("workload", "warmup_requests"): {"bool"},
    ("slo",): {"map"},
    ("slo", "ttft"): {"none"},
    ("slo", "ttft", "p90"): {"number", "big"},
    ("slo", "error_rate"): set(),
    ("objective",): set(),
    ("search",): {"map"},
    ("search", "strategy"): set(),
    ("search", "max_trials"): {"bool", "none"},
    ("search", "seed"): {"bool"},
    ("search", "baseline"): {"none"},
    ("search", "racing"): {"bool"},
}
WRONG_VALUES: dict[str, Any] = {
    "list": [1, "x", None],
    "map": {"k": "v"},
    "str": "not-a-thing",
    "bool": True,
    "none": None,
    "number": 1.5,
    "negative": -1,
    "big": 10**30,
    "nan": float("nan"),
    "inf": float("inf"),
    "scalar-list": [3, 4],
}


def wrong_types() -> Iterator[Case]:
    for path, allowed in FIELDS.items():
        for kind, value in WRONG_VALUES.items():
            if kind == "scalar-list" and path != ("parameters", "max-num-seqs"):
                continue
            expect = "inert" if kind in allowed or "any" in allowed else "refused"
            yield Case(f"type-{'.'.join(path)}-{kind}", "wrong types", with_value(path, value), expect)


def huge_values() -> Iterator[Case]:
    big: list[tuple[str, tuple[str, ...], Any]] = [
        ("max-requests", ("workload", "max_requests"), 10**12),
        ("concurrency", ("workload", "concurrency"), [10**9]),
        ("seed", ("search", "seed"), 2**64),
        ("max-trials", ("search", "max_trials"), 10**9),
        ("gpus", ("engine", "gpus"), 10**6),
        ("many-values", ("parameters", "max-num-seqs"), list(range(1, 10_002))),
        ("many-scenarios", ("workload", "scenarios"), ["D(32,16)"] * 101),
        ("long-name", ("name",), "a" * 10_000),
        ("long-description", ("description",), "d" * 2_001),
        ("long-constraint", ("constraints",), ["max-num-seqs <= " + "9" * 2_000]),
        ("power-constraint", ("constraints",), ["max-num-seqs ** 99999999 > 0"]),
        ("many-parameters", ("parameters",), {f"p{i}": [1] for i in range(65)}),
        ("huge-range-grid", ("parameters", "max-num-seqs"), {"low": 1, "high": 10**18, "step": 1}),
        ("huge-float-range", ("parameters", "max-num-seqs"), {"low": 1e-300, "high": 1e300, "log": True}),
        ("huge-duration", ("engine", "startup_timeout"), "99999999999999h"),
        ("huge-duration-number", ("workload", "max_time"), 1e30),
        ("nan-slo", ("slo", "ttft", "p90"), float("nan")),
        ("inf-error-rate", ("slo", "error_rate"), float("inf")),
        ("huge-arg", ("engine", "args"), {"time-scale": 1e308 * 10}),
    ]
    for name, path, value in big:
        yield Case(f"huge-{name}", "huge values", with_value(path, value), "refused" if name != "huge-arg" else "inert")
    yield Case("huge-file", "huge values", "description: '" + "x" * (1 << 20) + "'\n", "refused")
    yield Case("huge-line-of-nothing", "huge values", "#" * (2 << 20) + "\n", "refused")


def deep_nesting() -> Iterator[Case]:
    for depth in (200, 2_000, 50_000):
        yield Case(
            f"nest-list-{depth}", "deep nesting", "name: x\nengine: " + "[" * depth + "]" * depth + "\n", "refused"
        )
        nested = "{a: " * depth + "1" + "}" * depth
        yield Case(f"nest-map-{depth}", "deep nesting", f"name: x\nengine: {nested}\n", "refused")
    block = "".join(" " * i + "a:\n" for i in range(300))
    yield Case("nest-block-300", "deep nesting", "name: x\nengine:\n" + block, "refused")


def alias_bombs() -> Iterator[Case]:
    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        prev = chr(ord("a") + level - 1)
        laughs.append(f"{chr(ord('a') + level)}: &{chr(ord('a') + level)} [" + ",".join([f"*{prev}"] * 9) + "]")
    yield Case("bomb-billion-laughs", "alias bombs", "\n".join(laughs) + "\n", "refused")
    yield Case("bomb-recursive-list", "alias bombs", "name: &x [*x]\n", "refused")
    yield Case("bomb-recursive-map", "alias bombs", "engine: &e {args: *e}\n", "refused")
    yield Case("bomb-recursive-merge", "alias bombs", "engine: &e\n  <<: *e\n", "refused")
    merges = ["b0: &b0 {k0: 1}"] + [f"b{i}: &b{i} {{<<: [*b{i - 1}, *b{i - 1}], k{i}: 1}}" for i in range(1, 30)]
    yield Case("bomb-merge-chain", "alias bombs", "\n".join(merges) + "\n", "refused")
    lines = ["v: &v [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    for i in range(6):
        previous = "v" if i == 0 else f"w{i - 1}"
        lines.append(f"w{i}: &w{i} [" + ", ".join([f"*{previous}"] * 10) + "]")
    values = "\n".join(lines) + "\n"
    yield Case("bomb-parameter-values", "alias bombs", values + with_value(("name",), "bomb"), "refused")
    anchored = with_value(("parameters", "max-num-seqs"), [1, 2]).replace("max-num-seqs:", "max-num-seqs: &p", 1)
    yield Case("alias-benign", "alias bombs", anchored + "description: *p\n", "refused")


def template_injection(marker: str) -> Iterator[Case]:
    touch = f"touch {marker}"
    payloads = {
        "mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "cycler-globals": f"{{{{ cycler.__init__.__globals__.os.popen('{touch}').read() }}}}",
        "lipsum-globals": f"{{{{ lipsum.__globals__['os'].popen('{touch}').read() }}}}",
        "joiner-globals": "{{ joiner.__init__.__globals__ }}",
        "namespace-globals": "{{ namespace.__init__.__globals__ }}",
        "self-import": f"{{{{ self.__init__.__globals__.__builtins__.__import__('os').system('{touch}') }}}}",
        "env-class": "{{ env.__class__.__base__.__subclasses__() }}",
        "env-getattr": "{{ env|attr('__class__') }}",
        "format-attr": "{{ '{0.__class__}'.format(env) }}",
        "config-undefined": "{{ config.items() }}",
        "request-undefined": "{{ request.application.__globals__ }}",
        "include-passwd": "{% include '/etc/passwd' %}",
        "extends": "{% extends '../../etc/passwd' %}",
        "import-os": "{% import 'os' as os %}{{ os.system('true') }}",
        "syntax-error": "{{ 1 + }}",
        "unclosed-block": "{% if true %}",
        "range-huge": "{{ range(10**9) | list }}",
        "runaway-loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "string-bomb": "{{ 'a' * 10**10 }}",
        "power-bomb": "{{ 9 ** (9 ** 9) }}",
        "replace-bomb": "{{ ('a' * 1000000) | replace('a', 'a' * 1000) }}",
        "join-bomb": "{{ range(100000) | map('string') | join('x' * 100000) }}",
        "indent-bomb": "{{ ('x\\n' * 100000) | indent('y' * 100000) }}",
        "macro-doubling": "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('a') }}",
        "recursive-loop": "{% for s in ['a'] recursive %}{{ loop([s ~ s]) }}{% endfor %}",
        "namespace-doubling": "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "lipsum-bomb": "{{ lipsum(10**7) }}",
        "list-bomb": "{{ [1] * 10**10 }}",
        "ljust-bomb": "{{ 'a'.ljust(10**10) }}",
        "percent-width-bomb": "{{ '%10000000000d' % 1 }}",
        "format-width-bomb": "{{ '{:>10000000000}'.format(1) }}",
        "mutate-env": "{{ env.update({'PATH': ''}) }}",
        "undefined-env": "{{ env.AUTOTUNER_SURELY_NOT_SET_VARIABLE }}",
    }
    for name, payload in payloads.items():
        # In a YAML comment: Jinja evaluates it all the same, and whatever it renders to cannot break the YAML.
        yield Case(f"template-{name}", "template injection", f"# {payload}\n" + with_value(("name",), "t"), "refused")


SHELL = ("$(touch {m})", "`touch {m}`", "; touch {m}", "| touch {m}", "&& touch {m}", "\ntouch {m}\n")


def shell_metacharacters(marker: str) -> Iterator[Case]:
    for index, form in enumerate(SHELL):
        value = form.format(m=marker)
        places: list[tuple[str, tuple[str, ...], Any, str]] = [
            ("arg-value", ("engine", "args"), {"time-scale": 0.05, "decode-step-ms": value}, "refused"),
            ("param-value", ("parameters", "max-num-seqs"), [1, value], "refused"),
            ("served-name", ("model",), {"id": "builtin:smollm2", "served_name": value}, "inert"),
            ("env-value", ("engine", "env"), {"SIM_NOTE": value}, "inert"),
            ("request-param", ("workload",), {**base()["workload"], "request_params": {"user": value}}, "inert"),
            ("description", ("description",), value, "inert"),
            ("name", ("name",), value, "refused"),
            ("model-id", ("model", "id"), value, "refused"),
            ("scenario", ("workload", "scenarios"), [f"D(32,16){value}"], "refused"),
            ("constraint", ("constraints",), [f"__import__('os').system('touch {marker}')"], "refused"),
            ("flag-name", ("engine", "args"), {f"x{value}": 1}, "refused"),
            ("env-name", ("engine", "env"), {value: "1"}, "refused"),
            ("python", ("engine",), {**base()["engine"], "python": f"/bin/sh -c '{value}'"}, "inert"),
            ("image", ("engine",), {**base()["engine"], "launcher": "docker", "image": value}, "refused"),
        ]
        for place, path, payload, expect in places:
            # Accepted ones go through `tune` too: only the first form of each (each launches engines).
            tune = expect == "inert" and index == 0 and place not in ("description",)
            flags = place in ("arg-value", "param-value")
            yield Case(f"shell-{place}-{index}", "shell metacharacters", with_value(path, payload), expect, tune, flags)


def launcher_owned_flags() -> Iterator[Case]:
    """Flags the launcher sets itself (the address, the port, the model): a spec's value used to come after the
    launcher's on the command line and silently replace it (an engine on a port the tool never looked at)."""
    fixed = base()["engine"]["args"]
    for name, value in (("port", 9000), ("host", "0.0.0.0"), ("model", "other")):
        args = with_value(("engine", "args"), {**fixed, name: value})
        yield Case(f"launcher-arg-{name}", "launcher-owned flags", args, "refused")
        parameters = with_value(("parameters",), {"max-num-seqs": [1, 2], name: [value]})
        yield Case(f"launcher-param-{name}", "launcher-owned flags", parameters, "refused")


def path_traversal(root: Path) -> Iterator[Case]:
    outside = root / "outside"
    names = ["../../outside", "..", "a/b", "/etc/cron.d/x", "~root", "x\\..\\..\\y", "name\x00", "ｎａｍｅ"]
    for index, name in enumerate(names):
        yield Case(f"traversal-name-{index}", "path traversal", with_value(("name",), name), "refused")
    places: list[tuple[str, tuple[str, ...], Any, str]] = [
        # Reading a model or tokenizer from any path is what a spec is for; writing outside the report dir is not.
        ("model-path", ("model", "id"), f"{outside}/../../../etc/passwd", "inert"),
        ("model-relative", ("model", "id"), "./../../../../../etc/shadow", "inert"),
        ("tokenizer", ("model",), {"id": "builtin:smollm2", "tokenizer": "../../../../etc"}, "inert"),
        ("served-name", ("model",), {"id": "builtin:smollm2", "served_name": f"../../{outside.name}/x"}, "inert"),
        ("param-name", ("parameters",), {"../../x": [1, 2]}, "refused"),
        ("env-param-name", ("parameters",), {"env.../x": [1, 2]}, "refused"),
        ("scenario", ("workload", "scenarios"), ["D(32,16)/../../x"], "refused"),
        ("python", ("engine",), {**base()["engine"], "python": "../../../../usr/bin/python3"}, "inert"),
    ]
    for place, path, payload, expect in places:
        yield Case(f"traversal-{place}", "path traversal", with_value(path, payload), expect, expect == "inert")


def log_injection() -> Iterator[Case]:
    """Values that, echoed raw into a CI log, would issue GitHub workflow commands or move the cursor."""
    values = {
        "workflow-command": "\n::error file=x::pwned\n",
        "add-mask": "\n::add-mask::\n",
        "ansi-clear": "\x1b[2J\x1b[H",
        "bidi-override": "\u202etxt.exe",
    }
    for name, value in values.items():
        yield Case(f"log-runtime-{name}", "log injection", with_value(("engine", "runtime"), value), "refused")
        yield Case(f"log-name-{name}", "log injection", with_value(("name",), value), "refused")
        yield Case(
            f"log-image-{name}",
            "log injection",
            with_value(("engine",), {**base()["engine"], "image": value}),
            "refused",
        )
    # Legal values that the tool prints while it runs (config ids in progress lines): through `tune` as well.
    parameters = {"max-num-seqs": [1], "env.SIM_NOTE": [values["workflow-command"]]}
    yield Case("log-env-parameter", "log injection", with_value(("parameters",), parameters), "inert", True)


def corpus(root: Path, marker: str) -> list[Case]:
    cases = [
        *wrong_types(),
        *huge_values(),
        *deep_nesting(),
        *alias_bombs(),
        *template_injection(marker),
        *shell_metacharacters(marker),
        *launcher_owned_flags(),
        *path_traversal(root),
        *log_injection(),
    ]
    assert len({c.name for c in cases}) == len(cases), "case names must be unique"
    return cases


# ----------------------------------------------------------------------------------------------- verdicts
@dataclass
class Verdict:
    case: Case
    door: str
    code: int
    output: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(case: Case, door: str, code: int, output: str, seconds: float, spec_file: str) -> Verdict:
    """What every front door must show for a case, whatever it is."""
    verdict = Verdict(case, door, code, output, seconds)
    problems = verdict.problems
    if "Traceback" in output or "internal error" in output:
        problems.append("traceback / internal error")
    if re.search(r"^::", output, re.M) or "\x1b" in output or "\u202e" in output:
        problems.append("raw control text echoed into the output (a CI log would obey it)")
    refused = case.expect == "refused" and not (case.engine_flags and "validate" not in door)
    if refused and seconds > SLOW_SECONDS:
        problems.append(f"took {seconds:.1f}s")
    if refused:
        if code != 2:
            problems.append(f"exit {code}, expected 2")
        located = [m for m in LOCATED.finditer(output) if Path(m.group("file")).name == Path(spec_file).name]
        if not located:
            problems.append("no file:line:column in the message")
        lines = case.text.count("\n") + 1
        if any(not 1 <= int(m.group("line")) <= lines for m in located):
            problems.append("a line number outside the file")
    elif code not in INERT_EXITS.get(door, (0, 2, 4, 5)):
        problems.append(f"exit {code}")
    return verdict


# Accepted specs end like any study: tune 0 (a config met the SLOs), 4 (none did), 5 (infrastructure); pytest
# 0, or 1 when the verdict fails.
INERT_EXITS = {"pytest --tune": (0, 1, 2)}


def validate_in_process(case: Case, folder: Path) -> Verdict:
    """``autotuner validate`` through ``cli.main`` in this process (as the console script runs it)."""
    from autotuner.cli import main

    path = folder / f"{case.name}.yaml"
    path.write_bytes(case.text.encode("utf-8", "surrogatepass"))
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(err):
        try:
            code = main(["validate", str(path)], out=out)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        except BaseException as exc:  # noqa: BLE001 - an escape from main() is itself the finding
            code = -1
            err.write(f"Traceback (escaped main): {type(exc).__name__}: {exc}")
    return judge(
        case, "validate (in-process)", code, out.getvalue() + err.getvalue(), time.monotonic() - started, path.name
    )


def _listing(folder: Path, skip: tuple[Path, ...]) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not any(p.is_relative_to(s) for s in skip)}


def run_tool(case: Case, folder: Path, door: str, command: list[str], timeout: float = 120) -> Verdict:
    """One case through a real process, in a sandbox folder listed before and after."""
    from sandbox import Sandbox

    box = Sandbox(folder / case.name)
    work = box.root / "work"
    work.mkdir(exist_ok=True)
    spec = work / "spec.yaml"
    spec.write_bytes(case.text.encode("utf-8", "surrogatepass"))
    # pytest-benchmark (a dependency) creates an empty .benchmarks folder in every pytest run's directory
    skip = (box.reports, box.state, box.root / "tool.log", work / ".pytest_cache", box.root / ".benchmarks")
    before = _listing(box.root, skip)
    argv = [part.replace("{spec}", str(spec)).replace("{reports}", str(box.reports)) for part in command]
    started = time.monotonic()
    running = box.start(argv)
    finished = running.finish(timeout)
    seconds = time.monotonic() - started
    box.kill_leftovers()
    verdict = judge(case, door, finished.code, finished.output, seconds, spec.name)
    written = sorted(_listing(box.root, skip) - before)
    if written:
        verdict.problems.append(f"wrote outside the report dir: {written[:5]}")
    left = box.left(5)
    if left:
        verdict.problems.append(f"left running: {left}")
    return verdict


DOORS = {
    "autotuner validate": ["autotuner", "validate", "{spec}"],
    "autotuner tune": [sys.executable, "-m", "autotuner", "tune", "{spec}", "--report-dir", "{reports}"],
    "pytest --tune": [
        sys.executable, "-m", "pytest", "--tune", "{spec}", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
        "--tune-report-dir", "{reports}", "--rootdir", ".", "-c", "/dev/null",
    ],
}  # fmt: skip


def pytest_has_tune() -> bool:
    result = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, timeout=120)
    return "--tune " in result.stdout or "--tune\n" in result.stdout


def sample(cases: list[Case], per_category: int) -> list[Case]:
    """The refused cases to push through real processes: the first ``per_category`` of each category."""
    chosen: list[Case] = []
    for category in dict.fromkeys(c.category for c in cases):
        chosen += [c for c in cases if c.category == category and c.expect == "refused"][:per_category]
    return chosen


@dataclass
class Report:
    verdicts: list[Verdict]
    marker: Path

    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.ok]

    def summary(self) -> str:
        lines = [f"{'front door':<24} {'category':<22} {'tried':>5} {'refused':>7} {'inert':>5} {'bad':>4}"]
        keys = dict.fromkeys((v.door, v.case.category) for v in self.verdicts)
        for door, category in keys:
            group = [v for v in self.verdicts if v.door == door and v.case.category == category]
            refused = sum(1 for v in group if v.code == 2)
            lines.append(
                f"{door:<24} {category:<22} {len(group):>5} {refused:>7} {len(group) - refused:>5} "
                f"{sum(1 for v in group if not v.ok):>4}"
            )
        lines.append(f"total: {len(self.verdicts)} runs of {len({v.case.name for v in self.verdicts})} specs")
        lines.append(f"marker file a shell would have created: {'PRESENT' if self.marker.exists() else 'absent'}")
        for v in self.failures():
            lines.append(f"  BAD {v.door}: {v.case.name}: {'; '.join(v.problems)} | {v.output.strip()[:160]!r}")
        return "\n".join(lines)


@contextlib.contextmanager
def memory_limit(gib: int = 4) -> Iterator[None]:
    """Cap this process's address space while specs are loaded in it: a memory bomb that got through the tool's
    own limits fails here with MemoryError (a finding) instead of exhausting the machine. Lifted afterwards, so
    the processes started later (engines, genai-bench) do not inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (gib << 30, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run(
    root: Path,
    *,
    in_process: bool = True,
    processes: bool = True,
    per_category: int = 2,
    inert: Collection[str] | None = None,
    through_pytest: int | None = None,
    doors: tuple[str, ...] = tuple(DOORS),
) -> Report:
    """The corpus through ``autotuner validate`` in-process, then samples through real processes: the first
    ``per_category`` refused cases of each category, the accepted ones named in ``inert`` through ``tune`` (default
    all that are marked for it), and
    ``through_pytest`` refused ones through ``pytest --tune`` (default one per category)."""
    marker = Path(tempfile.gettempdir()) / f"autotuner-pwned-{uuid.uuid4().hex[:8]}"
    cases = corpus(root, str(marker))
    folder = root / "in-process"
    folder.mkdir(parents=True, exist_ok=True)
    verdicts: list[Verdict] = []
    if in_process:
        with memory_limit():
            verdicts += [validate_in_process(case, folder) for case in cases]
    if processes:
        chosen = sample(cases, per_category)
        accepted = [c for c in cases if c.tune and (inert is None or c.name in inert)]
        if "autotuner validate" in doors and shutil.which("autotuner"):
            verdicts += [
                run_tool(c, root / "validate", "autotuner validate", DOORS["autotuner validate"]) for c in chosen
            ]
        if "autotuner tune" in doors:
            door = DOORS["autotuner tune"]
            verdicts += [run_tool(c, root / "tune", "autotuner tune", door) for c in [*chosen, *accepted]]
        if "pytest --tune" in doors and pytest_has_tune():
            few = sample(cases, 1)[:through_pytest]
            verdicts += [run_tool(c, root / "pytest", "pytest --tune", DOORS["pytest --tune"], 180) for c in few]
    if marker.exists():
        for verdict in verdicts:
            verdict.problems.append("a marker file was created: something ran a shell")
            break
    return Report(verdicts, marker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-process-only", action="store_true", help="only `autotuner validate` in-process")
    parser.add_argument("--per-category", type=int, default=3, help="refused cases per category through processes")
    parser.add_argument("--json", action="store_true", help="print the failures as JSON (for the tests)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="autotuner-hostile-"))
    try:
        report = run(root, processes=not args.in_process_only, per_category=args.per_category)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        failures = [
            {"case": v.case.name, "door": v.door, "problems": v.problems, "output": v.output[-400:]}
            for v in report.failures()
        ]
        print(json.dumps({"runs": len(report.verdicts), "failures": failures, "marker": report.marker.exists()}))
    else:
        print(report.summary())
    return 1 if report.failures() or report.marker.exists() else 0


if __name__ == "__main__":
    sys.exit(main())
