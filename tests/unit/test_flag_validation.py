"""Spec flags checked by the engine's own parser, with each problem at the line that wrote the flag or value."""

from __future__ import annotations

import sys

import pytest

from autotuner.engines import flags
from autotuner.flag_validation import engine_flag_problems, flag_values
from autotuner.validation import load_spec_text

from .specs import BASE, mutate


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    flags.clear_cache()


def problems_of(*texts: str) -> list[str]:
    loaded = [load_spec_text(f"spec{i}.yaml", text) for i, text in enumerate(texts)]
    report = engine_flag_problems([(item.source, item.spec) for item in loaded])
    return [str(problem) for problem in report.problems]


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_the_shipped_style_spec_is_clean() -> None:
    assert problems_of(BASE) == []


def test_each_problem_is_located() -> None:
    text = mutate("args: {n-ctx: 4096}", "args: {n-ctx: 4096, cache-type-k: q9_0}")
    text = mutate("  threads: [1, 2]\n", "  thread: [1, 2]\n", text)
    text = mutate("{low: 256, high: 2048, log: true, step: 256}", "{low: 0, high: 2048, step: 256}", text)
    text = mutate("baseline: {n-parallel: 1, threads: 2}", "baseline: {n-parallel: 1}", text)
    text = mutate('constraints: ["n-parallel * threads <= 8"]\n', "", text)
    found = problems_of(text)
    assert len(found) == 3, found
    (unknown,) = [p for p in found if "thread'" in p]
    (choice,) = [p for p in found if "cache-type-k" in p]
    (low,) = [p for p in found if "n-batch" in p]
    assert unknown.startswith(f"spec0.yaml:{line_of(text, 'thread:')}:3:") and "did you mean 'threads'?" in unknown
    assert choice.startswith(f"spec0.yaml:{line_of(text, 'cache-type-k')}:") and "choose from f32" in choice
    assert low.startswith(f"spec0.yaml:{line_of(text, 'n-batch')}:") and ">= 1" in low


def test_every_value_of_a_list_is_checked() -> None:
    found = problems_of(mutate("n-parallel: [1, 2, 4]", "n-parallel: [1, 0, 4]"))
    assert len(found) == 1 and "n-parallel" in found[0] and "got 0" in found[0]


def test_flag_values_cover_args_lists_and_range_ends() -> None:
    spec = load_spec_text("s.yaml", BASE).spec
    assert list(flag_values(spec)) == [
        ("n-ctx", 4096, ("engine", "args", "n-ctx")),
        ("n-parallel", 1, ("parameters", "n-parallel", 0)),
        ("n-parallel", 2, ("parameters", "n-parallel", 1)),
        ("n-parallel", 4, ("parameters", "n-parallel", 2)),
        ("threads", 1, ("parameters", "threads", 0)),
        ("threads", 2, ("parameters", "threads", 1)),
        ("n-batch", 256, ("parameters", "n-batch", "low")),
        ("n-batch", 2048, ("parameters", "n-batch", "high")),
    ]


def test_engine_not_installed_is_not_a_problem() -> None:
    text = mutate("runtime: llamacpp", "runtime: sglang")
    text = mutate("launcher: process", f"launcher: process\n  python: {sys.executable}", text)
    loaded = load_spec_text("sg.yaml", text)
    report = engine_flag_problems([(loaded.source, loaded.spec)])
    assert report.problems == []
    assert report.checked_with["sg.yaml"].startswith("not checked: sglang does not import with")


def test_checked_with_names_the_parser() -> None:
    loaded = load_spec_text("a.yaml", BASE)
    report = engine_flag_problems([(loaded.source, loaded.spec)])
    assert report.checked_with == {"a.yaml": "llamacpp parser (in-process)"}
