"""The `autotuner` command: exit codes, located problems, no traceback for any input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autotuner.cli import main

from .specs import BASE, mutate

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(args), out=out)
    return code, out.getvalue()


def test_validate_shipped_specs() -> None:
    code, out = run("validate", str(ROOT / "tuning_specs"))
    assert code == 0
    assert "smollm2-cpu: llamacpp via process, 48 configs, strategy auto -> tpe" in out
    assert out.rstrip().endswith("spec(s) valid")


def test_validate_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(mutate("runtime: llamacpp", "runtime: vlm", mutate("max_requests: 12", "max_requests: x")))
    code, out = run("validate", str(bad))
    assert code == 2
    assert out.splitlines() == [
        f"{bad}:5:12: engine.runtime: unknown value 'vlm': did you mean 'vllm'? (choose from llamacpp, vllm, sglang, sim)",
        f"{bad}:18:17: workload.max_requests: Input should be a valid integer, unable to parse string as an integer "
        "(got 'x')",
        "2 problem(s) in 1 file(s)",
    ]


def test_validate_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(mutate("runtime: llamacpp", "runtime: vlm"))
    code, out = run("validate", "--json", str(bad))
    assert code == 2
    assert json.loads(out) == {
        "valid": False,
        "problems": [
            {
                "file": str(bad),
                "line": 5,
                "column": 12,
                "path": ["engine", "runtime"],
                "message": "unknown value 'vlm': did you mean 'vllm'? (choose from llamacpp, vllm, sglang, sim)",
            }
        ],
    }
    code, out = run("validate", "--json", str(ROOT / "tuning_specs" / "smollm2-cpu.yaml"))
    assert code == 0 and json.loads(out)["specs"][0]["configs"] == 48


def test_space_lists_configs() -> None:
    code, out = run("space", str(ROOT / "tuning_specs" / "smollm2-cpu.yaml"), "--limit", "2")
    assert code == 0
    assert out.splitlines() == [
        "smollm2-cpu: 48 configs",
        "strategy auto -> tpe, max_trials 6",
        "  61b8535a9a  n-batch=256,n-parallel=1,threads=1",
        "  fac4ab592f  n-batch=256,n-parallel=1,threads=2",
        "  ... 46 more (raise --limit to list them)",
    ]


def test_space_reports_constraint_exclusions_and_json(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(mutate('"n-parallel * threads <= 8"', '"n-parallel * threads <= 2"'))
    code, out = run("space", str(spec))
    assert code == 0 and out.splitlines()[0] == "smollm2-cpu: 24 configs (48 in the grid, 24 excluded by constraints)"
    assert len(out.splitlines()) == 2 + 24
    code, out = run("space", "--json", "--limit", "1", str(spec))
    data = json.loads(out)
    assert data["configs"] == 24 and data["grid"] == 48
    assert data["listed"] == [
        {
            "id": "n-batch=256,n-parallel=1,threads=1",
            "hash": "61b8535a9a",
            "config": {"n-batch": 256, "n-parallel": 1, "threads": 1},
        }
    ]


def test_space_continuous(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(mutate("n-batch: {low: 256, high: 2048, log: true, step: 256}", "mem: {low: 0.5, high: 0.9}"))
    code, out = run("space", str(spec))
    assert code == 0
    assert out.splitlines()[0] == (
        "smollm2-cpu: continuous space (float ranges without step: mem); sampled strategies draw from it"
    )


def test_space_of_an_invalid_spec(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(mutate("runtime: llamacpp", "runtime: vlm"))
    code, out = run("space", str(spec))
    assert code == 2 and out.startswith(f"{spec}:5:12: engine.runtime:")


@pytest.mark.parametrize(
    "argv", [["space", "x.yaml", "--limit", "0"], ["space", "x.yaml", "--limit", "a"], ["validate"], ["frobnicate"], []]
)
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: autotuner" in capsys.readouterr().err


HOSTILE = [
    "",
    "\x00\x01\x02",
    "[1, 2",
    "- just\n- a list\n",
    "name: x\n" * 3,
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for i in range(10) %}",
    "name: ../../etc/passwd\n" + BASE.split("\n", 1)[1],
    mutate('"n-parallel * threads <= 8"', "\"__import__('os').system('touch /tmp/pwned-by-spec')\""),
    mutate("max_requests: 12", "max_requests: 99999999999999999999999"),
    "a: &a [" + ",".join(["*a"] * 10) + "]\n",
    "a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n",
    "!!python/object/apply:os.system ['touch /tmp/pwned-by-spec']\n",
    mutate("name: smollm2-cpu", "name: !!python/name:os.system"),
]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_traceback_and_nothing_executed_for_hostile_input(tmp_path: Path, text: str) -> None:
    """Through the real console script, as a user (or a CI job on a fork's spec) runs it."""
    Path("/tmp/pwned-by-spec").unlink(missing_ok=True)
    spec = tmp_path / "hostile.yaml"
    spec.write_text(text, encoding="utf-8", errors="surrogateescape")
    result = subprocess.run(
        [sys.executable, "-m", "autotuner", "validate", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "internal error" not in output
    assert f"{spec}:" in output
    assert not Path("/tmp/pwned-by-spec").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.yaml"]


def test_shell_metacharacters_stay_data() -> None:
    """Values reach engines as argument lists, never through a shell: a value is kept verbatim, and nothing runs.

    (Whether `n-ctx` accepts a string is the engine flag parser's call, checked when engines validate flags.)
    """
    from autotuner.validation import load_spec_text

    text = mutate("args: {n-ctx: 4096}", "args: {n-ctx: 4096, slot-save-path: '$(touch /tmp/pwned-by-spec); rm -rf /'}")
    spec = load_spec_text("s.yaml", text, environ={}).spec
    assert spec.engine.args["slot-save-path"] == "$(touch /tmp/pwned-by-spec); rm -rf /"
    assert not Path("/tmp/pwned-by-spec").exists()


def test_endpoint_spec_refuses_fixed_flags(tmp_path: Path) -> None:
    spec = tmp_path / "e.yaml"
    text = mutate("launcher: process", "launcher: endpoint\n  url: http://127.0.0.1:8000")
    text = mutate(
        "  n-parallel: [1, 2, 4]\n  threads: [1, 2]\n  n-batch: {low: 256, high: 2048, log: true, step: 256}\n",
        "  request.temperature: [0.0, 0.7]\n",
        text,
    )
    text = mutate('constraints: ["n-parallel * threads <= 8"]\n', "", text)
    text = mutate("baseline: {n-parallel: 1, threads: 2}", "baseline: {request.temperature: 0.0}", text)
    spec.write_text(text)
    code, out = run("validate", "--no-engine-flags", str(spec))
    assert code == 2
    assert out.splitlines()[0] == (
        f"{spec}:8:9: engine.args: launcher endpoint starts nothing, so fixed flags would "
        "be silently ignored: remove engine.args"
    )
