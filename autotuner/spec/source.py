"""Spec text -> Python data with the line and column of every key and value.

Two steps, both of which can fail with a located problem:

1. Jinja2 renders the file (sandboxed, strict about undefined names) so a CI matrix can inject e.g. the engine
   image tag through ``{{ env.SGLANG_TAG | default("v0.5.5") }}``. Line numbers after rendering are those of
   the source as long as templates do not add or remove lines (expressions never do; ``{% %}`` blocks that
   span lines may shift what follows, which the error message then says).
2. PyYAML composes the rendered text into nodes, which keep their marks; we construct the data ourselves from
   the nodes so that every path (``("slo", "ttft", "p90")``) maps to where it was written. While walking we
   refuse what PyYAML silently accepts: duplicate keys (the last one would win unseen), and alias expansion
   beyond a fixed number of nodes (the "billion laughs" document).
"""

from __future__ import annotations

import functools
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.sandbox
import yaml

from .problems import Path, SpecProblem

MAX_SPEC_BYTES = 1 << 20
MAX_NODES = 20_000
RENDER_SECONDS = 5.0
_TEMPLATE_NAME = "<spec template>"


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Where each path was written: the key's mark (for "unknown key") and the value's (for "wrong value")."""

    keys: dict[Path, Mark] = field(default_factory=dict)
    values: dict[Path, Mark] = field(default_factory=dict)

    def locate(self, path: Path, *, at_key: bool = False) -> tuple[Path, Mark]:
        """The mark of ``path``, or of its closest written ancestor when the path does not exist (missing field)."""
        table = self.keys if at_key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return prefix, table[prefix]
            if prefix in self.values:
                return prefix, self.values[prefix]
        return (), Mark(1, 1)


@dataclass
class SpecSource:
    """A rendered, parsed spec file: its data plus the map from paths to places in the file."""

    file: str
    data: Any
    positions: SourceMap

    def problem(self, path: Path, message: str, *, at_key: bool = False) -> SpecProblem:
        _, mark = self.positions.locate(path, at_key=at_key)
        return SpecProblem(self.file, mark.line, mark.column, path, message)


class SourceError(Exception):
    def __init__(self, problem: SpecProblem):
        self.problem = problem
        super().__init__(str(problem))


def read_spec_source(file: str, text: str, environ: Mapping[str, str] | None = None) -> SpecSource:
    """Render and parse one spec file; raise ``SourceError`` with a located problem on failure."""
    if len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise SourceError(SpecProblem(file, 1, 1, (), f"file is larger than {MAX_SPEC_BYTES // 1024} KiB"))
    rendered = render_template(file, text, dict(os.environ if environ is None else environ))
    return parse_yaml(file, rendered)


class _SpecSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, bounded in what one step may build.

    The sandbox keeps templates away from Python's internals, but not from exhausting the machine in a single
    operation that neither the 1 MiB output check nor the render deadline (checked between bytecodes) can stop:
    ``'a' * 10**10``, ``9 ** 9 ** 9``, ``'%10000000000d' % 1``, ``'x'.ljust(10**10)``, ``s | indent(10**10)``.
    So those operations are checked before they run, and the constructs that can amplify without bound (macros
    calling themselves, recursive loops, ``namespace()`` state carried across iterations) are refused: a spec
    template injects values (``{{ env.TAG | default("v1") }}``), it does not compute.
    """

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        for name in ("lipsum", "cycler", "joiner", "namespace"):
            self.globals.pop(name, None)
        self.filters = {
            name: _bounded(function) if name in _SIZED_FILTERS else function for name, function in self.filters.items()
        }

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    _check_size(len(sequence) * times, f"repeating a {type(sequence).__name__} {times} times")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            _check_size(right * abs(left).bit_length() // 8, f"{left} ** {right}")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        if isinstance(getattr(__obj, "__self__", None), str) and getattr(__obj, "__name__", "") in _PADDING:
            _check_ints((*args, *kwargs.values()))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in ("format", "format_map"):
            _check_format(owner)
        return super().wrap_str_format(value)


_PADDING = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_SIZED_FILTERS = frozenset({"center", "indent", "format", "replace", "join"})
# A printf or str.format width or precision of a million or more: "%10000000d", "{:>10000000}".
_WIDE = re.compile(r"%[-+ #0]*(?:\d{7,}|\d*\.\d{7,})|\{[^{}]*:[^{}]*\d{7,}[^{}]*\}")


def _check_size(size: int, what: str) -> None:
    if size > MAX_SPEC_BYTES:
        raise jinja2.exceptions.SecurityError(f"{what} would build more than the 1 MiB a rendered spec may hold")


def _check_ints(values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            _check_size(value, f"a width of {value}")


def _check_format(text: str) -> None:
    if _WIDE.search(text):
        raise jinja2.exceptions.SecurityError(f"a format width in {text[:40]!r} is too large")


def _bounded(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose arguments are checked first: widths, and what ``replace``/``join``/``indent`` would build."""
    name = function.__name__

    @functools.wraps(function)  # keeps Jinja's pass_context / pass_eval_context marker
    def bounded(*args: Any, **kwargs: Any) -> Any:
        texts = [a for a in args if isinstance(a, str)]
        if name in ("do_center", "do_indent"):
            _check_ints((*args, *kwargs.values()))
        if name == "do_format" and texts:
            _check_format(texts[0])
        if name == "do_replace" and len(texts) >= 3:
            text, old, new = texts[-3:]
            _check_size(len(text) + (text.count(old) if old else len(text)) * len(new), "this replace")
        if name == "do_join" and len(args) >= 3 and isinstance(args[2], str):
            items = args[1] if isinstance(args[1], (str, list, tuple, range)) else list(args[1])  # a generator
            args = (args[0], items, *args[2:])
            _check_size(len(args[2]) * len(items), "this join")
        if name == "do_indent" and len(texts) >= 2:
            _check_size(len(texts[-1]) * (texts[0].count("\n") + 1), "this indent")
        return function(*args, **kwargs)

    return bounded


def _refuse_amplifiers(file: str, template: jinja2.nodes.Template) -> None:
    """Macros, ``{% call %}`` blocks and recursive loops can double a value at each step: not in a spec."""
    for node in template.find_all((jinja2.nodes.Macro, jinja2.nodes.CallBlock, jinja2.nodes.For)):
        if isinstance(node, jinja2.nodes.For) and not node.recursive:
            continue
        what = "a recursive loop" if isinstance(node, jinja2.nodes.For) else f"{{% {type(node).__name__.lower()} %}}"
        message = f"template error: {what} is not allowed in a spec (templates only fill in values)"
        raise SourceError(SpecProblem(file, node.lineno or 1, 1, (), message))


def render_template(file: str, text: str, environ: dict[str, str]) -> str:
    env = _SpecSandbox()
    try:
        _refuse_amplifiers(file, env.parse(text))
        template = env.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise SourceError(SpecProblem(file, exc.lineno or 1, 1, (), f"template error: {exc.message}")) from None
    chunks: list[str] = []
    size = 0
    try:
        with _deadline(RENDER_SECONDS):
            for chunk in template.generate(env=environ):
                size += len(chunk)
                if size > MAX_SPEC_BYTES:
                    raise SourceError(SpecProblem(file, 1, 1, (), "template renders to more than 1 MiB"))
                chunks.append(chunk)
    except SourceError:
        raise
    except _RenderTimeout:
        raise SourceError(
            SpecProblem(file, 1, 1, (), f"template took longer than {RENDER_SECONDS:g}s to render")
        ) from None
    except jinja2.UndefinedError as exc:
        line = _template_line(exc.__traceback__)
        message = str(exc.message)
        missing = re.search(r"'dict object' has no attribute '([^']+)'", message)
        if missing:
            name = missing.group(1)
            message = f"environment variable {name} is not set: set it, or write {{{{ env.{name} | default('...') }}}}"
        raise SourceError(SpecProblem(file, line, 1, (), f"template error: {message}")) from None
    except jinja2.TemplateError as exc:
        line = _template_line(exc.__traceback__)
        message = getattr(exc, "message", None) or str(exc)
        raise SourceError(SpecProblem(file, line, 1, (), f"template error: {message}")) from None
    except Exception as exc:  # noqa: BLE001 - any failure inside a template is the template's fault
        line = _template_line(exc.__traceback__)
        raise SourceError(SpecProblem(file, line, 1, (), f"template error: {type(exc).__name__}: {exc}")) from None
    return "".join(chunks)


def _template_line(tb: TracebackType | None) -> int:
    """Jinja2 rewrites tracebacks so that template frames carry template line numbers: take the last one."""
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class _RenderTimeout(Exception):
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Stop a runaway template (nested loops emitting nothing) where we can: SIGALRM in the main thread."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise _RenderTimeout()

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_yaml(file: str, text: str) -> SpecSource:
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader rejects control characters already here
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or "invalid YAML"
        raise SourceError(SpecProblem(file, line, column, (), f"YAML syntax error: {what}")) from None
    except yaml.reader.ReaderError as exc:
        line, column = _offset_to_mark(text, exc.position)
        raise SourceError(
            SpecProblem(file, line, column, (), f"not a text file: character {exc.character!r} is not allowed in YAML")
        ) from None
    except yaml.YAMLError as exc:
        raise SourceError(SpecProblem(file, 1, 1, (), f"YAML error: {exc}")) from None
    except RecursionError:
        raise SourceError(SpecProblem(file, 1, 1, (), "YAML nesting is too deep")) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise SourceError(SpecProblem(file, 1, 1, (), "the spec is empty: expected a mapping with name, model, ..."))
    builder = _Builder(file, loader)
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise SourceError(SpecProblem(file, 1, 1, (), "YAML nesting is too deep")) from None
    return SpecSource(file, data, builder.positions)


def _offset_to_mark(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


class _Builder:
    """Constructs Python data from YAML nodes, recording positions and refusing duplicates and alias bombs."""

    def __init__(self, file: str, loader: yaml.SafeLoader):
        self.file = file
        self.loader = loader
        self.positions = SourceMap()
        self.count = 0
        self.open: set[int] = set()  # ids of the nodes being built: seeing one again means a recursive alias

    def _mark(self, node: yaml.Node) -> Mark:
        return Mark(node.start_mark.line + 1, node.start_mark.column + 1)

    def _fail(self, node: yaml.Node, path: Path, message: str) -> SourceError:
        mark = self._mark(node)
        return SourceError(SpecProblem(self.file, mark.line, mark.column, path, message))

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(node, path, f"more than {MAX_NODES} YAML nodes (are aliases expanding without bound?)")
        self.positions.values.setdefault(path, self._mark(node))
        if id(node) in self.open:
            raise self._fail(node, path, "recursive YAML alias: a value cannot contain itself")
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            self.open.add(id(node))
            try:
                return self._build_collection(node, path)
            finally:
                self.open.discard(id(node))
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise self._fail(node, path, f"invalid value: {exc.problem}") from None

    def _build_collection(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves merge keys (<<: *anchor)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar_key(key_node, path)
                if key in result:
                    raise self._fail(key_node, path + (key,), f"duplicate key {key!r}: it is already set above")
                self.positions.keys[path + (key,)] = self._mark(key_node)
                result[key] = self.build(value_node, path + (key,))
            return result
        return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]

    def _scalar_key(self, node: yaml.Node, path: Path) -> str | int:
        if not isinstance(node, yaml.ScalarNode):
            raise self._fail(node, path, "a mapping key must be a plain value, not a list or mapping")
        key = self.loader.construct_object(node)
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            # YAML 1.1 reads `on:`, `yes:`, `1.5:` as non-strings; keep what the person wrote.
            return str(node.value)
        return key if isinstance(key, str) else str(key)
