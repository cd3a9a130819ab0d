"""SGLang specs are validated by SGLang's own ``ServerArgs`` parser (a parser-only venv: .ci/sglang-env.sh).

SGLang cannot serve on this machine (no GPU); its flag vocabulary can still be checked, and it is exactly what
moves between releases: 0.5.23 has no ``--cuda-graph-max-bs`` (it became ``--cuda-graph-max-bs-decode`` and
``--cuda-graph-max-bs-prefill``).
"""

from __future__ import annotations

import pytest

from autotuner.engines import flagcheck
from autotuner.engines.flags import FlagCheck, check_values
from autotuner.engines.runtimes import SGLANG

from .engine_venvs import require_python, unavailable

pytestmark = pytest.mark.slow

SCHEDULE_POLICIES = ("lpm", "random", "fcfs", "dfs-weight", "lof", "priority", "routing-key", "hrrn")


@pytest.fixture(scope="module")
def checked() -> FlagCheck:
    python = require_python("sglang")
    check = check_values(
        "sglang",
        [
            ("schedule-policy", "lifo"),
            ("schedule-policy", "lpm"),
            ("disable-radix-cache", True),
            ("disable-radix-cache", False),  # store-true engine: renders nothing, the name is still checked
            ("disable-radix-cach", False),
            ("cuda-graph-max-bs", 8),
            ("cuda-graph-max-bs-decode", 8),
            ("mem-fraction-static", 0.8),
            ("chunked-prefill-size", "big"),
            ("enable-torch-compile", [1]),
            ("env.SGLANG_ENABLE_JIT_DEEPGEMM", 0),
        ],
        python,
    )
    if not check.available:
        unavailable("sglang", check.checked_with)
    return check


def test_the_real_parser_was_asked(checked: FlagCheck) -> None:
    assert checked.checked_with.startswith("sglang 0.5.")
    assert checked.skipped == ("env.SGLANG_ENABLE_JIT_DEEPGEMM",)


def test_problems(checked: FlagCheck) -> None:
    by_name = {(p.name, repr(p.value)): p for p in checked.problems}
    assert set(by_name) == {
        ("schedule-policy", "'lifo'"),
        ("disable-radix-cach", "False"),
        ("cuda-graph-max-bs", "8"),
        ("chunked-prefill-size", "'big'"),
        ("enable-torch-compile", "[1]"),
    }
    policy = by_name[("schedule-policy", "'lifo'")]
    assert policy.kind == flagcheck.INVALID_CHOICE and policy.choices is not None
    assert set(SCHEDULE_POLICIES) <= set(policy.choices)
    moved = by_name[("cuda-graph-max-bs", "8")]
    assert moved.kind == flagcheck.UNKNOWN and moved.suggestion is not None
    assert moved.suggestion.startswith("cuda-graph-max-bs-")
    assert by_name[("disable-radix-cach", "False")].suggestion == "disable-radix-cache"
    assert by_name[("chunked-prefill-size", "'big'")].message == "chunked-prefill-size: invalid int value: 'big'"


def test_store_true_rendering() -> None:
    assert SGLANG.render_flag("disable-radix-cache", True) == ["--disable-radix-cache"]
    assert SGLANG.render_flag("disable-radix-cache", False) == []
