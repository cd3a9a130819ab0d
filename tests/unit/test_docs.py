"""Every command in README.md and docs/*.md is exercised, so the docs cannot rot.

Each line of every ```bash block is split into simple commands (``a && b`` is two) and classified:

- ``autotuner ...``: parsed by the real parser (``build_parser``); the cheap ones (validate, space, report,
  compare, baseline update) are really run, in-process, on the shipped spec and a results.json fixture, inside a
  temporary folder so nothing is written into the checkout. Placeholders (``SPEC``, ``RESULTS.json``, ``DIR``,
  ...) are mapped to real files; an optional ``[--flag value]`` is checked both left out and given.
- ``pytest --tune ...``: collected (``--collect-only``) in a subprocess: specs load, options parse, no engine
  starts. The README's bare ``python -m pytest`` is what CI runs (``.ci/run`` reads it from the README).
- ``python benchmarks/X.py ...``: the script exists and its argument parser accepts the arguments (parsed in a
  subprocess that stops right after parsing).
- ``python -m autotuner.docgen``, ``.ci/...`` scripts (and their start/stop actions), ``pip install`` lines (the
  extras and packages exist), ``export NAME=...`` (the tool or a tool it drives reads NAME).

A command no rule recognises fails ``test_every_bash_command_is_classified``: a new command in the docs needs a
check here. Inline code and ```text synopses that name ``autotuner`` or ``pytest --tune`` commands are checked
more loosely (the subcommand and every ``--option`` exist). The generated pages must equal what the code
generates now, and the hand-written pages must agree with the code where they restate it.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotuner import cli, docgen
from autotuner.catalog import BUILTIN_MODELS
from autotuner.docgen import cli_reference, spec_reference
from autotuner.launch import inferenceservice
from autotuner.results import StudyResult
from autotuner.validation import load_spec

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPEC = ROOT / "tuning_specs" / "smollm2-cpu.yaml"
RESULTS_FIXTURE = ROOT / "tests" / "fixtures" / "report" / "smollm2-cpu-results.json"
RUN = {"validate", "space", "report", "compare", "baseline"}  # cheap: really run; the others start engines
# Variables that the tool passes on to what it drives (engines, genai-bench, Docker), not read by its own code.
PASSED_ON = {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "https_proxy", "http_proxy", "no_proxy", "HF_HUB_OFFLINE",
             "DOCKER_HOST", "CUDA_VISIBLE_DEVICES"}  # fmt: skip


# ------------------------------------------------------------------------------------------ extraction
@dataclasses.dataclass(frozen=True)
class Command:
    """One simple command from a ```bash block: ``argv`` without comments, where it was written."""

    page: str
    line: int
    block: int  # index of the bash block in its page
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {shlex.join(self.argv)}"


def fenced_blocks(path: Path, language: str) -> Iterator[tuple[int, int, list[str]]]:
    """(index among this language's blocks, first line number, lines) of every fenced block in ``language``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index, start, body = 0, None, []
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == f"```{language}":
            start, body = number + 1, []
        elif start is not None and line.strip() == "```":
            yield index, start, body
            index, start = index + 1, None
        elif start is not None:
            body.append(line)


def optional_variants(text: str) -> list[str]:
    """``cmd [--a x] [--b]`` -> without the optional parts, and with all of them (both must work)."""
    optional = re.compile(r"\[(-[^\[\]]*)\]")
    if not optional.search(text):
        return [text]
    return [" ".join(optional.sub("", text).split()), optional.sub(r"\1", text)]


def split_commands(text: str) -> list[list[str]]:
    """A shell line as its simple commands: comments dropped, split at ``&&``, ``||``, ``;`` and ``|``."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def bash_commands() -> list[Command]:
    found = []
    for path in PAGES:
        for block, start, lines in fenced_blocks(path, "bash"):
            logical, first = "", start
            for offset, line in enumerate(lines):
                if not logical:
                    first = start + offset
                logical += line[:-1] + " " if line.endswith("\\") else line
                if line.endswith("\\"):
                    continue
                for variant in optional_variants(logical):
                    for argv in split_commands(variant):
                        found.append(Command(path.name, first, block, tuple(argv)))
                logical = ""
    return found


COMMANDS = bash_commands()


# ------------------------------------------------------------------------------------------ classification
def kind_of(argv: tuple[str, ...]) -> str | None:
    """Which check covers a command; None when no rule knows it (that fails the test)."""
    if argv[0] == "autotuner" or argv[:3] == ("python", "-m", "autotuner"):
        return "autotuner"
    if argv[0] == "pytest" or argv[:3] == ("python", "-m", "pytest"):
        if "--tune" in argv:
            return "pytest-tune"
        return "ci-test-command" if argv == ("python", "-m", "pytest") else None
    if argv[0] == "python" and len(argv) > 1 and re.fullmatch(r"benchmarks/\w+\.py", argv[1]):
        return "benchmark"
    if argv[:3] == ("python", "-m", "autotuner.docgen"):
        return "docgen"
    if argv[0].startswith(".ci/") or (argv[0] == "bash" and len(argv) > 1 and argv[1].startswith(".ci/")):
        return "ci-script"
    if argv[:2] == ("pip", "install"):
        return "pip"
    if argv[0] == "export" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
        return "environment"
    return None


def of_kind(kind: str) -> list[Command]:
    chosen = [c for c in COMMANDS if kind_of(c.argv) == kind]
    assert chosen, f"no {kind} command in the docs: the check would assert nothing"
    return chosen


def test_every_bash_command_is_classified() -> None:
    assert len(COMMANDS) >= 10, COMMANDS  # the extraction itself works
    unknown = [str(c) for c in COMMANDS if kind_of(c.argv) is None]
    assert not unknown, "commands in the docs that no check covers (add a rule to tests/unit/test_docs.py):\n" + (
        "\n".join(unknown)
    )


def test_the_extraction_sees_what_a_reader_sees() -> None:
    assert split_commands("pip install -e '.[x]' && pip install --no-deps y && autotuner tune a.yaml  # c") == [
        ["pip", "install", "-e", ".[x]"],
        ["pip", "install", "--no-deps", "y"],
        ["autotuner", "tune", "a.yaml"],
    ]
    assert optional_variants("autotuner report R [--baseline B] [--out DIR]") == [
        "autotuner report R",
        "autotuner report R --baseline B --out DIR",
    ]
    assert kind_of(("rm", "-rf", "reports")) is None and kind_of(("pytest", "-x")) is None


# ------------------------------------------------------------------------------------------ autotuner
@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results.json of the shipped spec (a recorded run, its digest set to the spec's current text) and main's
    baseline made from it: what the documented report, compare and baseline commands read."""
    folder = tmp_path_factory.mktemp("docs")
    loaded = load_spec(SPEC)
    data = json.loads(RESULTS_FIXTURE.read_text())
    data.update(spec_digest=loaded.digest, spec_file=str(SPEC), spec_name=loaded.spec.name)
    run = folder / "run" / "results.json"
    run.parent.mkdir()
    run.write_text(json.dumps(data))
    from autotuner.baseline import update

    baseline = update(loaded.spec.name, loaded.digest, run, folder / "main")
    assert StudyResult.read(baseline).best() is not None
    return folder


def materialize(argv: tuple[str, ...], workspace: Path) -> list[str]:
    """Placeholders and documented paths -> real files; outputs -> the workspace (never the checkout)."""
    out: list[str] = []
    for token in argv:
        name = token.rsplit("/", 1)[-1]
        if token == "SPEC" or token.startswith("tuning_specs/"):
            token = str(SPEC if token == "SPEC" else ROOT / token)
        elif name in ("RESULTS.json", "results.json"):
            token = str(workspace / "run" / "results.json")
        elif name in ("BASELINE.json", "baseline.json"):
            token = str(workspace / "main" / "smollm2-cpu" / "baseline.json")
        elif token in ("DIR", "reports", "reports/"):
            token = str(workspace / "out")
        elif token == "PATH":
            token = str(ROOT / "tuning_specs")
        elif token == "N":
            token = "3"
        out.append(token)
    return out


def test_autotuner_commands_parse_and_the_cheap_ones_run(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)  # relative defaults (reports/) land in the workspace
    parser = cli.build_parser()
    ran = set()
    for command in of_kind("autotuner"):
        argv = list(command.argv[3:] if command.argv[0] == "python" else command.argv[1:])
        try:
            args = parser.parse_args(argv)  # as written, placeholders and all
        except SystemExit as exc:
            pytest.fail(f"{command}: the parser refuses it (exit {exc.code})")
        if args.command not in RUN:
            continue
        real = materialize(tuple(argv), workspace)
        if args.command == "validate" and "--no-engine-flags" not in real:
            real.append("--no-engine-flags")  # engines' own parsers take seconds; tests/unit/test_flag_validation.py
        out = io.StringIO()
        code = cli.main(real, out=out)
        assert code == 0, f"{command}: exit {code}\n{out.getvalue()}"
        ran.add(args.command)
    assert {"report", "compare", "baseline"} <= ran, ran  # the README documents these; each really ran
    assert (workspace / "reports" / "smollm2-cpu" / "baseline.json").is_file()  # baseline update, default dir
    assert (workspace / "run" / "report.md").is_file()  # report beside RESULTS.json


# ------------------------------------------------------------------------------------------ pytest --tune
COLLECT = r"""
import contextlib, io, json, sys
import pytest
results = []
for args in json.loads(sys.argv[1]):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = pytest.main([*args, "--collect-only", "-q"])
    results.append([int(code), buffer.getvalue()[-3000:]])
print(json.dumps(results))
"""
OUTPUT_OPTIONS = ("--junitxml", "--junit-xml", "--tune-benchmark-json", "--tune-report-dir")


def pytest_args(argv: tuple[str, ...], workspace: Path) -> list[str]:
    """The command's pytest arguments, storage placeholders as a SQLite file and outputs in the workspace."""
    args = list(argv[3:] if argv[0] == "python" else argv[1:])
    for index, token in enumerate(args):
        option, equals, value = token.partition("=")
        if token.startswith("postgresql://"):
            args[index] = f"sqlite:///{workspace / 'study.db'}"
        elif token.startswith("sqlite:///") or token.startswith("journal:"):  # a relative file: not in the repo
            scheme, path = ("sqlite:///", token[10:]) if token.startswith("sqlite") else ("journal:", token[8:])
            args[index] = f"{scheme}{workspace / Path(path).name}"
        elif option in OUTPUT_OPTIONS and equals:
            args[index] = f"{option}={workspace / Path(value).name}"
        elif index and args[index - 1] in OUTPUT_OPTIONS:
            args[index] = str(workspace / Path(token).name)
    return [*args, "-o", f"cache_dir={workspace / 'cache'}"]


def test_pytest_tune_commands_collect(workspace: Path) -> None:
    commands = of_kind("pytest-tune")
    before = set(ROOT.iterdir())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", COLLECT, json.dumps([pytest_args(c.argv, workspace) for c in commands])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    for command, (code, output) in zip(commands, outcomes, strict=True):
        assert code == 0, f"{command}: pytest --collect-only exit {code}\n{output}"
        assert re.search(r"\d+ tests? collected", output), f"{command}: nothing collected\n{output}"
    assert set(ROOT.iterdir()) <= before, "collecting the documented commands wrote into the repository"


def test_the_ci_test_command_is_the_readme_one() -> None:
    (command,) = {c.argv for c in of_kind("ci-test-command")}
    assert "test-command" in (ROOT / ".ci" / "run").read_text()  # CI runs what follows the marker
    readme = (ROOT / "README.md").read_text()
    marker = readme.index("<!-- test-command")
    following = readme[marker:].split("```bash\n", 1)[1].split("\n", 1)[0]
    assert following.endswith(shlex.join(command))


# ------------------------------------------------------------------------------------------ benchmarks
PARSE_ONLY = r"""
import argparse, json, os, runpy, sys
class Parsed(Exception):
    pass
original = argparse.ArgumentParser.parse_args
def parse_then_stop(self, args=None, namespace=None):
    original(self, args, namespace)  # argparse exits 2 on arguments it refuses
    raise Parsed
argparse.ArgumentParser.parse_args = parse_then_stop
results = []
for script, argv in json.loads(sys.argv[1]):
    if "argparse" not in open(script, encoding="utf-8").read():
        results.append("the script has no argument parser: document it without arguments only")
        continue
    sys.argv = [script, *argv]
    try:
        runpy.run_path(script, run_name="__main__")
        results.append("the script ran without parsing its arguments")
    except Parsed:
        results.append("ok")
    except SystemExit as exc:
        results.append(f"its argument parser refused the arguments (exit {exc.code})")
print(json.dumps(results))
"""


def benchmark_lines() -> list[tuple[str, list[str]]]:
    """Benchmark invocations from bash blocks and from inline code (``python benchmarks/x.py [--engine cpu]``)."""
    found = [(str(c), list(c.argv[1:])) for c in of_kind("benchmark")] if _has("benchmark") else []
    for page, text in inline_commands():
        for variant in optional_variants(text):
            argv = shlex.split(variant)
            if argv[0] == "python" and len(argv) > 1 and argv[1].startswith("benchmarks/"):
                found.append((f"{page}: {variant}", argv[1:]))
    return found


def _has(kind: str) -> bool:
    return any(kind_of(c.argv) == kind for c in COMMANDS)


def test_benchmark_commands_exist_and_parse() -> None:
    lines = benchmark_lines()
    assert len(lines) >= 5, lines  # the README cites its benchmarks
    for where, argv in lines:
        assert (ROOT / argv[0]).is_file(), f"{where}: no such script"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    payload = json.dumps([[str(ROOT / argv[0]), argv[1:]] for _, argv in lines])
    result = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, payload], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = json.loads(result.stdout.strip().splitlines()[-1])
    bad = [f"{where}: {verdict}" for (where, _), verdict in zip(lines, verdicts, strict=True) if verdict != "ok"]
    assert not bad, "\n".join(bad) + "\n" + result.stderr[-2000:]


# ------------------------------------------------------------------------------------------ the rest
def test_docgen_commands_work(tmp_path: Path) -> None:
    from autotuner.docgen.__main__ import main

    for command in of_kind("docgen"):
        args = list(command.argv[3:])
        if "--check" in args:
            assert main([*args, "--docs", str(ROOT / "docs")]) == 0, f"{command}: the generated pages are stale"
        else:
            assert main([*args, "--docs", str(tmp_path)]) == 0
            assert sorted(p.name for p in tmp_path.iterdir()) == sorted(docgen.pages()), command


def test_ci_scripts_exist_and_take_the_documented_action() -> None:
    for command in of_kind("ci-script"):
        argv = command.argv[1:] if command.argv[0] == "bash" else command.argv
        script = ROOT / argv[0]
        assert script.is_file(), f"{command}: no such script"
        if command.argv[0] != "bash":
            assert os.access(script, os.X_OK), f"{command}: not executable (run it with bash, or chmod +x)"
        for action in argv[1:]:
            assert re.search(rf"^\s*{re.escape(action)}\)", script.read_text(), re.M), f"{command}: no {action!r}"


def test_pip_lines_name_real_extras_and_packages() -> None:
    extras = set(importlib.metadata.metadata("inference-autotuner").get_all("Provides-Extra") or [])
    packages = {model.package for model in BUILTIN_MODELS.values()}
    for command in of_kind("pip"):
        for token in command.argv[2:]:
            editable = re.fullmatch(r"\.\[([\w,-]+)\]", token)
            if editable:
                assert set(editable.group(1).split(",")) <= extras, f"{command}: unknown extra in {token}"
            elif not token.startswith("-") and token != ".":
                assert token in packages, f"{command}: {token} is not a package the tool documents"


def test_exported_variables_are_read_by_something() -> None:
    code = "\n".join(
        p.read_text(errors="replace")
        for folder in ("autotuner", "action", ".ci", "tuning_specs")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and p.suffix in (".py", ".sh", ".yaml", "")
    )
    for command in of_kind("environment"):
        assignments = command.argv[1:] if command.argv[0] == "export" else command.argv[:1]
        for assignment in assignments:
            name = assignment.split("=", 1)[0]
            assert name in PASSED_ON or name in code, f"{command}: nothing reads {name}"


def test_quickstart_is_covered_by_ci_and_the_e2e_test() -> None:
    quickstart = [c for c in COMMANDS if c.page == "README.md" and c.block in (0, 1)]
    assert any(c.argv[:2] == ("autotuner", "tune") for c in quickstart)
    e2e = (ROOT / "tests" / "e2e" / "test_embedded_default.py").read_text()
    tuned = next(c.argv[2] for c in quickstart if c.argv[:2] == ("autotuner", "tune"))
    assert Path(tuned).name in e2e and '"tune"' in e2e  # the first command, shortened, runs there
    assert (ROOT / ".ci" / "run").is_file()  # the second is CI's own (test_the_ci_test_command_is_the_readme_one)


# ------------------------------------------------------------------------------------------ inline commands
def inline_commands() -> Iterator[tuple[str, str]]:
    """`autotuner ...`, `pytest --tune ...` and `python benchmarks/...` in prose, and ```text synopses."""
    starts = re.compile(r"^(autotuner [a-z][a-z-]*(?=\s|$)|pytest --tune|python benchmarks/)")  # not messages
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for span in re.findall(r"`([^`\n]+)`", prose):
            if starts.match(span):
                yield path.name, span
        for _, _, lines in fenced_blocks(path, "text"):
            for line in lines:
                if starts.match(line):
                    yield path.name, re.split(r"\s{2,}", line.strip())[0]  # the synopsis, not its explanation


def _option_names(parser: object) -> set[str]:
    actions = getattr(parser, "_actions", [])
    return {name for action in actions for name in action.option_strings}


def test_inline_commands_name_real_commands_and_options() -> None:
    parser = cli.build_parser()
    tune_options = cli_reference.pytest_option_names()
    checked = 0
    for page, text in inline_commands():
        tokens = [t.strip("[]") for t in text.split()]
        if tokens[0] == "autotuner":
            sub, rest = parser, tokens[1:]
            while rest and rest[0] in (children := {name: p for name, _, p in cli_reference.subcommands(sub)}):
                sub, rest = children[rest[0]], rest[1:]
            top_synopsis = rest and (rest[0].startswith("-") or rest[0] == "COMMAND")  # `autotuner [--version] ...`
            assert sub is not parser or top_synopsis, f"{page}: `{text}`: no such command"
            unknown = [t for t in rest if t.startswith("--") and t.split("=")[0] not in _option_names(sub)]
            assert not unknown, f"{page}: `{text}`: unknown option(s) {unknown}"
        elif tokens[0] == "pytest":
            unknown = [t for t in tokens if t.startswith("--tune") and t.split("=")[0] not in tune_options]
            assert not unknown, f"{page}: `{text}`: unknown option(s) {unknown}"
        checked += 1
    assert checked >= 20


# ------------------------------------------------------------------------------------------ generated pages
def test_generated_pages_are_current() -> None:
    assert docgen.stale(ROOT / "docs") == [], "run: python -m autotuner.docgen"


def test_spec_reference_has_a_row_for_every_field() -> None:
    page = (ROOT / "docs" / "spec-reference.md").read_text()
    for model in spec_reference.MODEL_FORMS:
        for name in model.model_fields:
            row = spec_reference.KEY_AS.get((model, name), f"`{name}`")
            if model.__name__ != "Choice":
                assert f"\n| {row} |" in page, f"{model.__name__}.{name} has no row"


def test_cli_reference_has_every_command_and_option() -> None:
    page = (ROOT / "docs" / "cli.md").read_text()
    stack = [("autotuner", cli.build_parser())]
    while stack:
        prog, parser = stack.pop()
        for name, _help, sub in cli_reference.subcommands(parser):
            assert f"`{prog} {name}`" in page
            for option in _option_names(sub) - {"-h", "--help"}:
                assert f"`{option}" in page or f", {option}" in page, f"{prog} {name} {option}"
            stack.append((f"{prog} {name}", sub))
    for option in cli_reference.pytest_option_names():
        assert f"| `{option}" in page, option


def test_exit_codes_agree_between_concepts_and_the_cli_reference() -> None:
    concepts = (ROOT / "docs" / "concepts.md").read_text().split("## Exit codes", 1)[1]
    assert {int(code) for code in re.findall(r"^\| (\d+) \|", concepts, re.M)} == {
        code for code, _ in cli_reference.EXIT_CODES
    }


def test_scaling_lists_every_kubernetes_setting() -> None:
    page = (ROOT / "docs" / "scaling.md").read_text()
    table = page.split("| setting | default | meaning |", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"^\| `([\w.]+)`(?:, `(\w+)`)?", table, re.M))
    settings = {name for pair in named for name in pair if name}
    assert settings == {*inferenceservice._SETTINGS, "secret.VAR"}


def test_links_between_pages_resolve() -> None:
    anchors: dict[str, set[str]] = {}
    for path in PAGES:
        headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
        anchors[path.name] = {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}
    for path in PAGES:
        prose = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"https?://", target):
                continue
            file, _, anchor = target.partition("#")
            page = path if not file else (path.parent / file)
            assert page.exists(), f"{path.name}: broken link {target}"
            if anchor:
                assert anchor in anchors.get(page.name, set()), f"{path.name}: no heading for {target}"
