"""``docs/cli.md``, generated from the real argparse parser and the pytest plugin's option definitions.

Why generated: the parser is the truth about which commands and options exist, their defaults and choices; a
hand-written copy drifts. The usage lines are built here from the parser's actions rather than taken from
argparse's own formatter, whose output depends on the terminal width and changed between Python versions (the
page must be byte-identical wherever ``--check`` runs). The pytest options are read by running the plugin's own
``add_options`` against a recorder, so every ``--tune-*`` option and ini key appears with the help it has.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, cast

import pytest

from .. import cli, compare
from ..pytest_plugin import options
from .markdown import cell as _cell

TITLE = "Command line"

# Exit codes, each tied to the constant the code returns where one exists, so a renumbering breaks the page's
# generation instead of silently contradicting it.
EXIT_CODES: list[tuple[int, str]] = [
    (cli.EXIT_OK, "success; `tune`: a config met the SLOs; `compare`: unchanged or improved"),
    (cli.EXIT_INTERNAL, "an internal error (set `AUTOTUNER_DEBUG=1` for the traceback, and please report it)"),
    (cli.EXIT_INVALID, "invalid input: a spec, a command-line value, a results file, an existing study without "
     "`--resume`, or a baseline refused (another spec, other hardware without `--allow-mismatch`)"),
    (3, "`serve`: the engine failed to start (the classified reason and the log's tail are printed)"),
    (cli.EXIT_NO_FEASIBLE, "`tune`: no config met the SLOs"),
    (cli.EXIT_INFRASTRUCTURE, "an infrastructure problem: no Docker daemon, no cluster, a tokenizer that cannot "
     "be built (`tune`), no space left on device (any command; the message names the file, and `tune` keeps "
     "every trial measured before)"),
    (compare.EXIT_REGRESSED, "`compare`, `tune --baseline`: regressed"),
    (compare.EXIT_INCONCLUSIVE, "`compare`, `tune --baseline`: inconclusive (the data cannot tell: more "
     "`--ab-rounds`)"),
    (130, "interrupted (Ctrl-C, SIGTERM); what was measured is kept"),
]  # fmt: skip


# ------------------------------------------------------------------------------------------ argparse side
def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each subcommand, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _metavar(action: argparse.Action) -> str:
    if action.choices is not None and action.metavar is None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    if isinstance(action.metavar, str):
        return action.metavar
    return action.dest.upper() if action.option_strings else action.dest


def _is_switch(action: argparse.Action) -> bool:
    return action.nargs == 0


def usage(prog: str, parser: argparse.ArgumentParser) -> str:
    """One line: ``prog POSITIONAL [--option VALUE] [--switch]``, optional parts in brackets."""
    parts = [prog]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            parts.append(_metavar(action) + " ...")
            continue
        if not action.option_strings:
            name = _metavar(action)
            parts.append(f"{name} [{name} ...]" if action.nargs == "+" else name)
            continue
        text = action.option_strings[-1] if _is_switch(action) else f"{action.option_strings[-1]} {_metavar(action)}"
        parts.append(text if action.required else f"[{text}]")
    return " ".join(parts)


def _help(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's ``%(default)s``-style substitutions and ``%%`` done as argparse does them."""
    text = action.help or ""
    if "%" in text:
        params = {**vars(action), "prog": prog}
        if params.get("choices") is not None:
            params["choices"] = ", ".join(str(c) for c in action.choices or ())
        text = text % params
    return " ".join(text.split())


def _default(action: argparse.Action) -> str:
    value = action.default
    if _is_switch(action) or value in (None, argparse.SUPPRESS) or value == []:
        return ""
    return f"`{value}`" if isinstance(value, (str, int, float, Path)) else f"`{value!r}`"


def argument_rows(parser: argparse.ArgumentParser, prog: str) -> list[str]:
    rows = ["| argument | default | meaning |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            name = names if _is_switch(action) else f"{names} {_metavar(action)}"
        else:
            name = _metavar(action) + (" ..." if action.nargs == "+" else "")
        if action.choices is not None and action.metavar is not None:
            name += " (" + ", ".join(str(c) for c in action.choices) + ")"
        rows.append(f"| `{name}` | {_default(action)} | {_cell(_help(action, prog))} |")
    return rows


def _command_sections(parser: argparse.ArgumentParser, prog: str, level: int) -> list[str]:
    out: list[str] = []
    for name, help_text, sub in subcommands(parser):
        full = f"{prog} {name}"
        out += ["", "#" * level + f" `{full}`", ""]
        if help_text:
            out += [help_text[0].upper() + help_text[1:] + ".", ""]
        out += ["```text", usage(full, sub), "```"]
        rows = argument_rows(sub, full)
        if len(rows) > 2:
            out += ["", *rows]
        out += _command_sections(sub, full, level + 1)
    return out


# ------------------------------------------------------------------------------------------- pytest side
@dataclasses.dataclass
class _Option:
    names: tuple[str, ...]
    kwargs: dict[str, Any]


@dataclasses.dataclass
class _Recorder:
    """Stands in for ``pytest.Parser`` (and its option group) while the plugin's ``add_options`` runs: it only
    records what is added, which is the public part of both interfaces."""

    options: list[_Option] = dataclasses.field(default_factory=list)
    ini: dict[str, tuple[str, str | None, Any]] = dataclasses.field(default_factory=dict)

    def getgroup(self, name: str, description: str = "") -> _Recorder:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.append(_Option(names, kwargs))

    def addini(self, name: str, help: str, type: str | None = None, default: Any = None) -> None:  # noqa: A002
        self.ini[name] = (help, type, default)


def _recorded() -> _Recorder:
    recorder = _Recorder()
    options.add_options(cast(pytest.Parser, recorder))
    return recorder


def pytest_option_names() -> set[str]:
    """Every option string the plugin adds (``--tune``, ``--tune-storage``, ...)."""
    return {name for option in _recorded().options for name in option.names}


def pytest_rows() -> list[str]:
    """The ``--tune`` options with their ini keys and effective defaults (``TuneSettings``'s, where it has one)."""
    recorder = _recorded()
    defaults = {f.name: f.default for f in dataclasses.fields(options.TuneSettings)}
    rows = ["| option | ini key | default | meaning |", "|---|---|---|---|"]
    for option in recorder.options:
        (flag,) = option.names
        dest = option.kwargs.get("dest", flag.lstrip("-").replace("-", "_"))
        metavar = option.kwargs.get("metavar")
        name = f"{flag} {metavar}" if metavar else flag
        ini = f"`{dest}`" if dest in recorder.ini else ""
        default = defaults.get(dest.removeprefix("tune_"), None) if dest != "tune" else None
        shown = "" if default is None or default is False or default == () else f"`{default}`"
        rows.append(f"| `{name}` | {ini} | {shown} | {_cell(' '.join(str(option.kwargs.get('help', '')).split()))} |")
    if "tune_specs" in recorder.ini:
        rows.append(
            f"| (ini only) | `tune_specs` | `{options.DEFAULT_SPECS}` | {_cell(recorder.ini['tune_specs'][0])} |"
        )
    return rows


# ------------------------------------------------------------------------------------------------ render
def render() -> str:
    parser = cli.build_parser()
    prog = parser.prog
    out = [
        f"# {TITLE}",
        "",
        "<!-- Generated by `python -m autotuner.docgen` from autotuner/cli.py and autotuner/pytest_plugin/options.py: "
        "edit the help texts there, not this file. -->",
        "",
        f"{parser.description} Every command prints problems as one line each (specs: `file:line:column: "
        "field.path: message`), never a traceback. Concepts: [concepts.md](concepts.md); spec keys: "
        "[spec-reference.md](spec-reference.md).",
        "",
        "```text",
        usage(prog, parser),
        "```",
        "",
        "| command | what it does |",
        "|---|---|",
        *(f"| [`{name}`](#{prog}-{name}) | {_cell(help_text)} |" for name, help_text, _ in subcommands(parser)),
    ]
    out += _command_sections(parser, prog, 2)
    out += ["", "## Exit codes", "", "| code | meaning |", "|---|---|"]
    out += [f"| {code} | {_cell(meaning)} |" for code, meaning in EXIT_CODES]
    out += [
        "",
        "## `pytest --tune` options",
        "",
        "Every option has an ini twin (`[tool.pytest.ini_options]` in pyproject.toml); the command line wins. Bad "
        "values are refused before anything is collected. Paths from the command line are relative to where "
        "pytest was started, paths from the ini file to the rootdir.",
        "",
        *pytest_rows(),
    ]
    return "\n".join(out) + "\n"
