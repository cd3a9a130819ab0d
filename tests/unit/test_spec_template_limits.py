"""A spec template fills in values; it cannot exhaust the machine, and an image reference cannot forge log lines.

Each bomb below allocates gigabytes (or computes for minutes) in one operation that neither the 1 MiB output
check nor the render deadline can interrupt; each must be refused at once with a located template error. The
legitimate uses next to them must keep working.
"""

from __future__ import annotations

import time

import pytest

from autotuner.spec import SpecError
from autotuner.validation import load_spec_text

from .specs import BASE, mutate

BOMBS = [
    "{{ 'a' * 10**10 }}",
    "{{ [1] * 10**10 }}",
    "{{ 9 ** (9 ** 9) }}",
    "{{ 'a'.ljust(10**10) }}",
    "{{ '%10000000000d' % 1 }}",
    "{{ '{:>10000000000}'.format(1) }}",
    "{{ 'a' | center(10**10) }}",
    "{{ ('x\\n' * 100000) | indent('y' * 100000) }}",
    "{{ range(100000) | map('string') | join('x' * 100000) }}",
    "{{ ('a' * 1000000) | replace('a', 'a' * 1000) }}",
    "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('a') }}",
    "{% for s in ['a'] recursive %}{{ loop([s ~ s]) }}{% endfor %}",
    "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{{ lipsum(10**7) }}",
]


@pytest.mark.parametrize("bomb", BOMBS)
def test_resource_bombs_are_refused_at_once(bomb: str) -> None:
    started = time.monotonic()
    with pytest.raises(SpecError) as caught:
        load_spec_text("s.yaml", f"# {bomb}\n" + BASE)
    assert time.monotonic() - started < 2
    (problem,) = caught.value.problems
    assert str(problem).startswith("s.yaml:1:1: <spec>: template error: "), str(problem)


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{ env.TAG | default('v0.5.5') }}", "v0.5.5"),
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ 2 ** 64 }}", "18446744073709551616"),
        ("{{ '%.2f' % 3.14159 }}", "3.14"),
        ("{{ '{:>6}'.format('x') }}", "     x"),
        ("{{ range(3) | map('string') | join(', ') }}", "0, 1, 2"),
        ("{{ env.get('MISSING', 5000000) }}", "5000000"),
        ("{% for i in range(2) %}{{ i }}{% endfor %}", "01"),
    ],
)
def test_templates_that_fill_in_values_still_work(template: str, rendered: str) -> None:
    text = mutate("description: Tune llama.cpp serving SmolLM2-135M on CPU", f'description: "{template}"')
    assert load_spec_text("s.yaml", text, environ={}).spec.description == rendered


@pytest.mark.parametrize("image", ["$(touch /tmp/x)", "a b:1", "x:1\n::error::forged", "Upper/Case:1", "a:b:c"])
def test_an_image_must_be_an_image_reference(image: str) -> None:
    text = mutate("  launcher: process\n", f"  launcher: docker\n  image: {image!r}\n".replace("'", '"'))
    with pytest.raises(SpecError) as caught:
        load_spec_text("s.yaml", text)
    assert any("engine.image: invalid image" in str(p) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    "image", ["lmsysorg/sglang:v0.5.5", "ghcr.io/org/engine:1.0-py3", "localhost:5000/x", "python:3.11"]
)
def test_real_image_references_are_accepted(image: str) -> None:
    text = mutate("  launcher: process\n", f"  launcher: docker\n  image: {image}\n")
    assert load_spec_text("s.yaml", text).spec.engine.image == image
