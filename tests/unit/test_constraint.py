"""Constraints are evaluated safely: expressions over parameters, nothing else."""

from __future__ import annotations

import pytest

from autotuner.constraint import ConstraintError, parse_constraint

NAMES = ["n-parallel", "threads", "n-batch", "n-ubatch", "schedule-policy", "enable-prefix-caching"]


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("n-parallel * threads <= 8", {"n-parallel": 4, "threads": 2}, True),
        ("n-parallel * threads <= 8", {"n-parallel": 4, "threads": 4}, False),
        ("n-batch >= n-ubatch", {"n-batch": 512, "n-ubatch": 512}, True),
        ("n-batch - n-ubatch > 0", {"n-batch": 512, "n-ubatch": 256}, True),
        ("n-batch % n-ubatch == 0", {"n-batch": 768, "n-ubatch": 512}, False),
        (
            "schedule-policy != 'lpm' or enable-prefix-caching",
            {"schedule-policy": "lpm", "enable-prefix-caching": False},
            False,
        ),
        ("schedule-policy in ['fcfs', 'lpm']", {"schedule-policy": "lpm"}, True),
        ("not enable-prefix-caching", {"enable-prefix-caching": True}, False),
        ("max(threads, 1) * 2 == 4", {"threads": 2}, True),
        ("1 <= threads <= 2", {"threads": 3}, False),
        ("(threads if n-parallel > 1 else 8) > 4", {"threads": 2, "n-parallel": 1}, True),
        ("enable-prefix-caching == true", {"enable-prefix-caching": True}, True),
        ("2 ** threads <= 4", {"threads": 2}, True),
    ],
)
def test_evaluation(text: str, values: dict[str, object], expected: bool) -> None:
    constraint = parse_constraint(text, NAMES)
    assert constraint.holds(values) is expected  # type: ignore[arg-type]


def test_names_read() -> None:
    assert parse_constraint("n-parallel * threads <= 8", NAMES).names == {"n-parallel", "threads"}


def test_longer_name_wins_over_its_prefix() -> None:
    constraint = parse_constraint("n-batch-size > n-batch", ["n-batch", "n-batch-size"])
    assert constraint.names == {"n-batch", "n-batch-size"}
    assert constraint.holds({"n-batch": 1, "n-batch-size": 2})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "only min, max, abs can be called"),
        ("threads.__class__", "Attribute is not allowed"),
        ("[x for x in (1, 2)]", "ListComp is not allowed"),
        ("(lambda: 1)()", "only min, max, abs can be called"),
        ("threads[0]", "Subscript is not allowed"),
        ("open('/etc/passwd')", "only min, max, abs can be called"),
        ("threads := 3", "invalid expression"),
        ("n-paralel > 1", "unknown name 'n-paralel' in constraint 'n-paralel > 1': did you mean 'n-parallel'?"),
        ("thread > 1", "unknown name 'thread' in constraint 'thread > 1': did you mean 'threads'?"),
        ("", "non-empty expression"),
        ("threads >", "invalid expression"),
        ("x" * 1001, "longer than 1000"),
        ("b'x' == threads", "constant b'x' is not allowed"),
    ],
)
def test_rejected(text: str, message: str) -> None:
    with pytest.raises(
        ConstraintError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("*", r"\*")
        .replace("?", r"\?"),
    ):
        parse_constraint(text, NAMES)


def test_huge_power_is_refused_at_evaluation() -> None:
    constraint = parse_constraint("threads ** 100000 > 1", NAMES)
    with pytest.raises(ConstraintError, match="exponent"):
        constraint.holds({"threads": 10})


def test_type_errors_are_constraint_errors() -> None:
    constraint = parse_constraint("schedule-policy > 3", NAMES)
    with pytest.raises(ConstraintError, match="cannot be evaluated"):
        constraint.holds({"schedule-policy": "lpm"})


def test_missing_value_is_an_error() -> None:
    constraint = parse_constraint("threads > 1", NAMES)
    with pytest.raises(ConstraintError, match="needs 'threads'"):
        constraint.holds({})
