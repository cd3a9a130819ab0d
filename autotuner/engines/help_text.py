"""Read an engine's flag vocabulary from the text argparse prints for ``--help``, and check flags against it.

Why: a spec that runs an engine in a container should be checked against the engine *in that image* (flags move
between releases), and when no local interpreter has the engine, the image's own ``--help`` is the only
description of it there is. argparse prints every option with a fixed layout, so that text gives back what
matters for a spec before any trial: which option strings exist, which are switches (take no value), how many
values the others take, and their choices when argparse shows them as ``{a,b,c}``. It does not give value types
(``--tp two`` is found only when the engine starts), nor choices an engine hides behind a custom metavar.

Pure (text in, verdicts out), so it is tested on real help texts without Docker. :func:`check_all` answers with
the same result dictionaries as ``flagcheck.check_all`` (the in-process parser check), so a problem found either
way reads the same in a report.

The layout read here (argparse, Python 3.10 to 3.14)::

    usage: prog [-h] --model-path MODEL_PATH ...      <- skipped up to the first blank line
    <section>:
      -h, --help            show this help message and exit
      --model-path MODEL_PATH, --model MODEL_PATH     <- every option string of one argument, its values
      --schedule-policy {lpm,random,fcfs}             <- choices
      --disable-radix-cache                           <- a switch
                            help text, indented to the help column

An argument is a line indented by exactly two spaces that starts with ``-``; its invocation ends at the first
run of two spaces (where the help begins). Deeper-indented lines are help text, even when they start with ``-``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from .flagcheck import INVALID_CHOICE, INVALID_VALUE, NOT_NEGATABLE, SWITCH_WITH_VALUE, UNKNOWN, Result

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Python 3.14 colours help on a terminal; be safe if it leaks
_ENTRY = re.compile(r"^  (-[^\s-]|--[^\s-])")  # exactly two spaces, then an option string
_OPTION = re.compile(r"^(--?[A-Za-z0-9?][^\s,=\[\]{}]*)(?: (.*))?$")
_USAGE_OPTION = re.compile(r"(?:^|[\s\[(|])(--[A-Za-z0-9][A-Za-z0-9_.+-]*)")
_CHOICES = re.compile(r"^\{([^{}]*)\}$")


class HelpTextError(ValueError):
    """The text is not an argparse help (no usage line, no option at all): nothing can be checked with it."""


@dataclass(frozen=True)
class HelpOption:
    """One argument as its help line shows it.

    ``min_values``/``max_values`` come from argparse's rendering of ``nargs`` (``X``: 1-1, ``[X]``: 0-1,
    ``[X ...]``: 0-any, ``X [X ...]``: 1-any, ``X X``: 2-2, nothing: a switch); ``max_values`` is None for "any
    number", and also when the metavar is not one argparse would make up (the count is then not checked).
    """

    strings: tuple[str, ...]
    args: str  # the values part as printed, e.g. "{lpm,fcfs}" or "MODEL_PATH"; "" for a switch
    min_values: int
    max_values: int | None
    choices: tuple[str, ...] | None = None

    @property
    def switch(self) -> bool:
        return self.max_values == 0


@dataclass(frozen=True)
class EngineHelp:
    """Every option string of a help text (long and short aliases) and the argument it belongs to."""

    options: Mapping[str, HelpOption]
    usage_only: frozenset[str] = frozenset()  # in the usage line but without a help line: exists, shape unknown

    def long_options(self) -> list[str]:
        return sorted({o for o in self.options if o.startswith("--")} | self.usage_only)

    def switches(self) -> set[str]:
        return {o for o, entry in self.options.items() if entry.switch}

    def valued(self) -> set[str]:
        return {o for o, entry in self.options.items() if not entry.switch}

    def choices(self, option: str) -> tuple[str, ...] | None:
        entry = self.options.get(option)
        return entry.choices if entry else None


def parse_help(text: str) -> EngineHelp:
    """The options of an argparse ``--help`` text; anything printed before its ``usage:`` line is ignored."""
    lines = _ANSI.sub("", text).replace("\r\n", "\n").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("usage:")]
    if not starts:
        raise HelpTextError("no 'usage:' line: not an argparse help text")
    lines = lines[starts[-1] :]  # engines log while importing: the help is what comes last
    usage_end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    usage = " ".join(lines[:usage_end])
    options: dict[str, HelpOption] = {}
    for line in lines[usage_end:]:
        if not _ENTRY.match(line):
            continue
        entry = _parse_entry(line[2:].split("  ", 1)[0].rstrip())
        if entry is None:
            continue
        for string in entry.strings:
            options.setdefault(string, entry)
    if not options:
        raise HelpTextError("no option lines after the usage: not an argparse help text")
    in_usage = {match.group(1) for match in _USAGE_OPTION.finditer(usage)}
    return EngineHelp(options, frozenset(o for o in in_usage if o not in options))


def _parse_entry(invocation: str) -> HelpOption | None:
    """``--a A, --b A`` (Python < 3.13) or ``-a, --b A`` (3.13+): every part names the same argument."""
    strings: list[str] = []
    args = ""
    for part in _split_top_level(invocation):
        match = _OPTION.match(part)
        if match is None:
            return None
        strings.append(match.group(1))
        args = args or (match.group(2) or "")
    if not strings:
        return None
    low, high, choices = _arity(args)
    return HelpOption(tuple(strings), args, low, high, choices)


def _split_top_level(invocation: str) -> Iterator[str]:
    """Split at ", " outside brackets and braces (choices are joined by "," without a space, but be safe)."""
    depth = 0
    start = 0
    for index, char in enumerate(invocation):
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0 and invocation[index + 1 : index + 2] == " ":
            yield invocation[start:index].strip()
            start = index + 2
    yield invocation[start:].strip()


def _arity(args: str) -> tuple[int, int | None, tuple[str, ...] | None]:
    """(min values, max values or None, choices) from argparse's rendering of nargs around one metavar."""
    if not args:
        return 0, 0, None
    if args == "...":  # argparse.REMAINDER
        return 0, None, None
    patterns: tuple[tuple[str, int, int | None], ...] = (
        (r"\[(?P<m>.+) \.\.\.\]", 0, None),  # nargs="*"
        (r"(?P<m>.+) \[(?P=m) \.\.\.\]", 1, None),  # nargs="+"
        (r"(?P<m>.+) \.\.\.", 1, None),  # argparse.PARSER
        (r"\[(?P<m>[^'\"].*)\]", 0, 1),  # nargs="?" (a metavar "['a', 'b']" is a list shown as text, not this)
    )
    for pattern, low, high in patterns:
        found = re.fullmatch(pattern, args)
        if found:
            return low, high, _choices(found.group("m"))
    repeated = re.fullmatch(r"(?P<m>\S+)(?: (?P=m))+", args)  # nargs=N with one metavar
    if repeated:
        return len(args.split(" ")), len(args.split(" ")), _choices(repeated.group("m"))
    if " " in args:  # a metavar of several words ("{a,b} or a plugin's name", "['a', 'b']"): a value, uncounted
        return 1, None, None
    return 1, 1, _choices(args)


def _choices(metavar: str) -> tuple[str, ...] | None:
    found = _CHOICES.match(metavar)
    return tuple(found.group(1).split(",")) if found else None


# --- checking flags ---------------------------------------------------------------------------------------------


def check_all(help_: EngineHelp, flags: Sequence[tuple[str, Sequence[str]]]) -> list[Result]:
    """:func:`check_one` for each ``(name, rendered tokens)``, in order."""
    return [check_one(help_, name, tokens) for name, tokens in flags]


def check_one(help_: EngineHelp, name: str, tokens: Sequence[str]) -> Result:
    """Check one flag (``name`` without dashes, ``tokens`` as the engine profile renders it) against ``help_``.

    The rules and results are flagcheck's: exact spelling (no argparse abbreviations), a false switch of a
    store-true engine renders as nothing but its name must exist, ``--no-x`` only where the help shows it, vLLM's
    dotted JSON keys (``--compilation-config.mode``) belong to the flag before the dot.
    """
    known = set(help_.options) | help_.usage_only
    option = f"--{name}"
    if not tokens:
        return {"ok": True} if option in known else _unknown(option, help_)
    first = tokens[0]
    head = first.split(".", 1)[0]
    dotted = "." in first and head in known
    base = head if dotted else first
    if base not in known:
        if first.startswith("--no-") and option in known:
            return {
                "ok": False,
                "kind": NOT_NEGATABLE,
                "message": f"{option} is a switch without a {first} form: leave the flag out for false",
            }
        return _unknown(option, help_)
    entry = help_.options.get(base)
    values = list(tokens[1:])
    if entry is None or dotted:
        return {"ok": True}  # known to exist; its values cannot be read from the help
    if entry.switch:
        return {"ok": True} if not values else {"ok": False, "kind": INVALID_VALUE, "message": SWITCH_WITH_VALUE}
    if len(values) < entry.min_values:
        return {"ok": False, "kind": INVALID_VALUE, "message": _expected(entry.min_values, entry.max_values)}
    if entry.max_values is not None and len(values) > entry.max_values:
        extra = " ".join(values[entry.max_values :])
        return {"ok": False, "kind": INVALID_VALUE, "message": f"unrecognized arguments: {extra}"}
    if entry.choices is not None:
        for value in values:
            if value not in entry.choices:
                listed = ", ".join(repr(choice) for choice in entry.choices)
                return {
                    "ok": False,
                    "kind": INVALID_CHOICE,
                    "message": f"invalid choice: {value!r} (choose from {listed})",
                    "choices": list(entry.choices),
                }
    return {"ok": True}


def _expected(low: int, high: int | None) -> str:
    """argparse's own wording for too few values."""
    if high is not None and low == high:
        return "expected one argument" if low == 1 else f"expected {low} arguments"
    return "expected at least one argument"


def _unknown(option: str, help_: EngineHelp) -> Result:
    """flagcheck's message and suggestion: a ``--no-`` form is suggested only for a ``--no-`` flag."""
    negative = option.startswith("--no-")
    candidates = [o for o in help_.long_options() if negative or not o.startswith("--no-")]
    found = difflib.get_close_matches(option, candidates, n=1, cutoff=0.6)
    suggestion = found[0] if found else None
    hint = f": did you mean {suggestion}?" if suggestion else ""
    return {"ok": False, "kind": UNKNOWN, "message": f"unknown flag {option}{hint}", "suggestion": suggestion}
