"""Constraints between parameters, e.g. ``n-parallel * threads <= 8``, evaluated without ``eval``.

Specs come from pull requests, so a constraint is untrusted text. It is parsed with Python's ``ast`` and only a
closed set of node types is accepted: numbers, strings, booleans, parameter names, arithmetic, comparisons,
``and``/``or``/``not``, conditional expressions, and the functions ``min``, ``max``, ``abs``. Nothing else can be
reached (no attributes, subscripts, calls to other functions, comprehensions or lambdas), so no spec can run code.

Flag names contain hyphens (``n-parallel``), which Python would read as subtraction; names known to the spec are
replaced by placeholders before parsing, longest first, and only where they stand as whole words. Write
subtraction with spaces (``n-batch - n-ubatch``) when both sides are parameters.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Scalar = bool | int | float | str

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs}
_MAX_LENGTH = 1000
_MAX_POWER = 64
# A hyphenated word left after known names were replaced is a misspelt flag name, not a subtraction.
_HYPHENATED = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:-\w+)+")


class ConstraintError(ValueError):
    """A constraint that cannot be parsed or refers to something that does not exist."""


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint. ``names`` are the parameters it reads; ``holds(config)`` evaluates it."""

    text: str
    names: frozenset[str]
    _tree: ast.Expression
    _placeholders: Mapping[str, str]

    def holds(self, values: Mapping[str, Scalar]) -> bool:
        """True when the config satisfies the constraint; a parameter it reads but the config lacks is an error."""
        env = {}
        for placeholder, name in self._placeholders.items():
            if name not in values:
                raise ConstraintError(f"constraint {self.text!r} needs {name!r}, which this config does not set")
            env[placeholder] = values[name]
        try:
            return bool(_Evaluator(env).visit(self._tree.body))
        except ConstraintError:
            raise
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise ConstraintError(f"constraint {self.text!r} cannot be evaluated: {exc}") from None


def parse_constraint(text: str, names: Iterable[str]) -> Constraint:
    """Parse ``text`` against the known parameter ``names``; raise ``ConstraintError`` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ConstraintError("a constraint must be a non-empty expression such as 'n-parallel * threads <= 8'")
    if len(text) > _MAX_LENGTH:
        raise ConstraintError(f"a constraint longer than {_MAX_LENGTH} characters is not supported")
    known = sorted(set(names), key=len, reverse=True)
    placeholders: dict[str, str] = {}
    source = text
    for index, name in enumerate(known):
        placeholder = f"__p{index}"
        pattern = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-])")
        source, count = pattern.subn(placeholder, source)
        if count:
            placeholders[placeholder] = name
    for word in _HYPHENATED.findall(source):
        parts = word.split("-")
        if not all(part in placeholders or part.isdigit() for part in parts):
            hint = difflib.get_close_matches(word, known, n=1)
            suggestion = f": did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(sorted(known)) or 'none'})"
            raise ConstraintError(f"unknown name {word!r} in constraint {text!r}{suggestion}")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConstraintError(f"invalid expression {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        _check_node(node, text, placeholders, known)
    return Constraint(text, frozenset(placeholders.values()), tree, placeholders)


def _check_node(node: ast.AST, text: str, placeholders: Mapping[str, str], known: list[str]) -> None:
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BinOp,
        ast.Compare,
        ast.IfExp,
        ast.Constant,
        ast.Name,
        ast.Load,
        ast.Call,
        ast.Tuple,
        ast.List,
        *_BINARY,
        *_COMPARE,
    )
    if not isinstance(node, allowed):
        raise ConstraintError(f"{type(node).__name__} is not allowed in a constraint ({text!r})")
    if isinstance(node, ast.Constant) and not isinstance(node.value, (bool, int, float, str)):
        raise ConstraintError(f"constant {node.value!r} is not allowed in a constraint")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
            raise ConstraintError(f"only {', '.join(_FUNCTIONS)} can be called in a constraint ({text!r})")
    elif isinstance(node, ast.Name) and node.id not in placeholders and node.id not in _FUNCTIONS:
        if node.id in ("true", "false", "True", "False"):
            return
        hint = difflib.get_close_matches(node.id, known, n=1)
        suggestion = f": did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(sorted(known)) or 'none'})"
        raise ConstraintError(f"unknown name {node.id!r} in constraint {text!r}{suggestion}")


class _Evaluator(ast.NodeVisitor):
    def __init__(self, env: Mapping[str, Any]):
        self.env = env

    def generic_visit(self, node: ast.AST) -> Any:  # pragma: no cover - _check_node rejects the rest
        raise ConstraintError(f"{type(node).__name__} is not allowed in a constraint")

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        return self.env[node.id]

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(item) for item in node.elts)

    def visit_List(self, node: ast.List) -> Any:
        return tuple(self.visit(item) for item in node.elts)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > _MAX_POWER:
            raise ConstraintError(f"exponent {right} is too large")
        if isinstance(node.op, ast.Mult) and (isinstance(left, str) or isinstance(right, str)):
            raise ConstraintError("strings cannot be multiplied in a constraint")
        return _BINARY[type(node.op)](left, right)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            return all(self.visit(value) for value in node.values)
        return any(self.visit(value) for value in node.values)

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(self.visit(arg) for arg in node.args))
