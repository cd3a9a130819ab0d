"""Loading specs: typed values, templating, defaults, files and folders, hostile input."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from autotuner.metric import Metric
from autotuner.spec import SpecError
from autotuner.units import Percentile
from autotuner.validation import discover, load_spec, load_spec_text, load_specs

from .specs import BASE, mutate

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text("s.yaml", text, environ={} if environ is None else environ)
    return [str(p) for p in caught.value.problems]


def test_typed_values() -> None:
    spec = load_spec_text("s.yaml", BASE, environ={}).spec
    assert spec.engine.startup_timeout == timedelta(seconds=120)
    assert spec.workload.max_time == timedelta(minutes=1)
    assert spec.slo.ttft is not None and spec.slo.ttft.limits == {Percentile("p90", 0.9): timedelta(seconds=2)}
    assert spec.slo.tpot is not None and spec.slo.tpot.hard is False
    assert spec.slo.tpot.limits[Percentile("p90", 0.9)] == timedelta(milliseconds=80)
    assert spec.slo.error_rate.max == pytest.approx(0.01) and spec.slo.error_rate.hard
    assert spec.objective[0].direction == "maximize" and spec.objective[0].metric == Metric("output_throughput")
    assert spec.search.timeout == timedelta(minutes=20)
    assert spec.search.baseline == {"n-parallel": 1, "threads": 2}
    assert spec.regression.threshold == pytest.approx(0.05)
    assert spec.engine.args == {"n-ctx": 4096} and type(spec.engine.args["n-ctx"]) is int
    assert spec.model.kind == "builtin"


def test_engine_args_keep_types_and_env_becomes_strings() -> None:
    text = mutate(
        "args: {n-ctx: 4096}", "args: {n-ctx: 4096, flash: true, ratio: 0.5, dtype: auto}\n  env: {A: 1, B: true}"
    )
    spec = load_spec_text("s.yaml", text, environ={}).spec
    assert [type(v) for v in spec.engine.args.values()] == [int, bool, float, str]
    assert spec.engine.env == {"A": "1", "B": "1"}


def test_defaults_for_a_minimal_spec() -> None:
    text = """\
name: minimal
model: {id: Qwen/Qwen2.5-0.5B-Instruct}
engine: {runtime: vllm}
parameters: {max-num-seqs: [64, 128]}
workload: {scenarios: ["N(480,240)/(300,150)"], concurrency: [8]}
"""
    spec = load_spec_text("m.yaml", text, environ={}).spec
    assert spec.engine.launcher == "process" and spec.engine.startup_timeout == timedelta(minutes=10)
    assert spec.workload.task == "text-to-text" and spec.workload.max_requests == 64
    assert spec.slo.error_rate.max == 0.0
    assert str(spec.objective[0]) == "maximize output_throughput"
    assert spec.search.strategy == "auto" and spec.search.repeats == 1
    assert spec.model.kind == "hub"


def test_multi_objective() -> None:
    text = mutate(
        "objective: {maximize: output_throughput}",
        "objective: [{maximize: output_throughput}, {minimize: e2e_latency.p99}]",
    )
    spec = load_spec_text("s.yaml", text, environ={}).spec
    assert spec.multi_objective and [str(t) for t in spec.objective] == [
        "maximize output_throughput",
        "minimize e2e_latency.p99",
    ]


def test_template_reads_the_environment() -> None:
    text = mutate(
        "  launcher: process",
        "  launcher: docker\n  image: \"lmsysorg/sglang:{{ env.SGLANG_TAG | default('v0.5.5') }}\"",
    )
    assert load_spec_text("s.yaml", text, environ={}).spec.engine.image == "lmsysorg/sglang:v0.5.5"
    assert (
        load_spec_text("s.yaml", text, environ={"SGLANG_TAG": "v0.5.9"}).spec.engine.image == "lmsysorg/sglang:v0.5.9"
    )


def test_template_blocks() -> None:
    text = mutate(
        "  threads: [1, 2]",
        "  threads: [{% for t in range(1, 4) %}{{ t }}{% if not loop.last %}, {% endif %}{% endfor %}]",
    )
    space = load_spec_text("s.yaml", text, environ={}).space
    assert {c.as_dict()["threads"] for c in space.grid()} == {1, 2, 3}


def test_template_undefined_variable_names_the_line() -> None:
    text = mutate("  threads: [1, 2]", "  threads: [{{ env.MISSING }}]")
    assert problems(text) == [
        "s.yaml:11:1: <spec>: template error: environment variable MISSING is not set: set it, or write "
        "{{ env.MISSING | default('...') }}"
    ]


def test_template_runaway_loop_is_stopped() -> None:
    text = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n" + BASE
    assert problems(text) == ["s.yaml:1:1: <spec>: template took longer than 5s to render"]


def test_template_output_is_bounded() -> None:
    text = "# {% for i in range(100000) %}{{ 'x' * 50 }}{% endfor %}\n" + BASE
    assert problems(text) == ["s.yaml:1:1: <spec>: template renders to more than 1 MiB"]


def test_yaml_merge_keys_and_small_anchors_work() -> None:
    text = (
        mutate("slo:\n  ttft: {p90: 2s}", "slo:\n  ttft: &lat {p90: 2s}\n  e2e_latency_x: null")
        .replace("  e2e_latency_x: null\n", "")
        .replace("e2e_latency: {p99: 10s}", "e2e_latency: *lat")
    )
    spec = load_spec_text("s.yaml", text, environ={}).spec
    assert spec.slo.e2e_latency == spec.slo.ttft


def test_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)
    )
    found = problems(bomb)
    assert len(found) == 1 and "more than 20000 YAML nodes" in found[0]


def test_recursive_alias_is_refused() -> None:
    assert problems("a: &a [1, *a]\n") == ["s.yaml:1:4: a[1]: recursive YAML alias: a value cannot contain itself"]


def test_deep_nesting_is_refused() -> None:
    assert problems("a: " + "[" * 3000 + "]" * 3000 + "\n") == ["s.yaml:1:1: <spec>: YAML nesting is too deep"]


def test_huge_file_is_refused() -> None:
    assert problems("# " + "x" * (1 << 20) + "\n") == ["s.yaml:1:1: <spec>: file is larger than 1024 KiB"]


def test_yaml_1_1_booleans_in_keys_are_kept_as_written() -> None:
    text = mutate("  threads: [1, 2]", "  threads: [1, 2]\n  on: [1, 2]")
    config = next(load_spec_text("s.yaml", text, environ={}).space.grid())
    assert "on" in config.as_dict()


def test_all_problems_are_reported_at_once() -> None:
    text = mutate("runtime: llamacpp", "runtime: vlm")
    text = mutate("max_requests: 12", "max_requests: -1", text)
    text = mutate("ttft: {p90: 2s}", "ttft: {p90: fast}", text)
    assert [p.split(": ")[1] for p in problems(text)] == ["engine.runtime", "workload.max_requests", "slo.ttft.p90"]


def test_shipped_specs_are_valid() -> None:
    loaded = load_specs([ROOT / "tuning_specs"])
    assert "smollm2-cpu" in {item.spec.name for item in loaded}


def test_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "sub" / "b.yml").write_text(mutate("name: smollm2-cpu", "name: other"))
    (tmp_path / "notes.txt").write_text("not a spec")
    assert discover([tmp_path]) == [tmp_path / "a.yaml", tmp_path / "sub" / "b.yml"]
    assert discover([tmp_path / "a.yaml", tmp_path]) == [tmp_path / "a.yaml", tmp_path / "sub" / "b.yml"]
    assert [item.spec.name for item in load_specs([tmp_path])] == ["smollm2-cpu", "other"]


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE)
    with pytest.raises(SpecError) as caught:
        load_specs([tmp_path])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'b.yaml'}:1:7: name: spec name 'smollm2-cpu' is already used by {tmp_path / 'a.yaml'}"
    ]


def test_problems_from_several_files_are_collected(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(mutate("runtime: llamacpp", "runtime: x"))
    (tmp_path / "b.yaml").write_text(mutate("task: text-to-text", "task: y"))
    with pytest.raises(SpecError) as caught:
        load_specs([tmp_path])
    assert [p.file for p in caught.value.problems] == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.yaml", "no such file"),
        (lambda p: (p / "bin.yaml").write_bytes(b"\xff\xfe\x00") and p / "bin.yaml", "not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value.problems[0]) == f"{path}:1:1: <spec>: {message}" or message in str(caught.value)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no spec files"):
        load_specs([tmp_path])
