"""Flags the launcher sets itself (the model, its served name, host, port) are refused in a spec's ``engine.args``
and ``parameters``: rendered after the launcher's own, they used to win silently (an engine listening on a port
the tool never looked at; every request a 404 under another served name).

Line numbers refer to ``specs.BASE`` (llama.cpp, process launcher) as edited by each case.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from autotuner.cli import main
from autotuner.engines.runtimes import PROFILES
from autotuner.spec import SpecError
from autotuner.validation import launcher_flags, load_spec_text, load_specs

from .specs import mutate

REPO = Path(__file__).resolve().parents[2]

MODEL = "set by the launcher (from model.id): set model.id instead"
SERVED = "set by the launcher (from model.served_name): set model.served_name instead"
PORT = "set by the launcher (a free port for each engine it starts): remove it"
HOST = "set by the launcher (the address the tool reaches the engine on): remove it"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text("s.yaml", text, environ={})
    return [str(p) for p in caught.value.problems]


def engine(runtime: str, args: str, launcher: str = "process") -> str:
    text = mutate("  runtime: llamacpp\n  launcher: process\n  args: {n-ctx: 4096}", f"  runtime: {runtime}\n"
                  f"  launcher: {launcher}\n  image: example/engine:1\n  args: {args}")  # fmt: skip
    return text if launcher == "docker" else text.replace("  image: example/engine:1\n", "")


@pytest.mark.parametrize(
    ("runtime", "args", "expected"),
    [
        ("llamacpp", "{n-ctx: 4096, port: 9000}", [f"s.yaml:7:23: engine.args.port: 'port' is {PORT}"]),
        ("llamacpp", "{host: 0.0.0.0}", [f"s.yaml:7:10: engine.args.host: 'host' is {HOST}"]),
        ("llamacpp", "{model: /tmp/other.gguf}", [f"s.yaml:7:10: engine.args.model: 'model' is {MODEL}"]),
        ("llamacpp", "{alias: smol}", [f"s.yaml:7:10: engine.args.alias: 'alias' is {SERVED}"]),
        ("vllm", "{served-model-name: x}", [f"s.yaml:7:10: engine.args.served-model-name: 'served-model-name' is {SERVED}"]),
        ("vllm", "{served_model_name: x}", [f"s.yaml:7:10: engine.args.served_model_name: 'served_model_name' is {SERVED}"]),
        ("sglang", "{model: x}", [f"s.yaml:7:10: engine.args.model: 'model' is {MODEL}"]),
        ("sglang", "{model-path: x}", [f"s.yaml:7:10: engine.args.model-path: 'model-path' is {MODEL}"]),
        ("sim", "{model: x}", [f"s.yaml:7:10: engine.args.model: 'model' is {SERVED}"]),
        ("vllm", "{served-model: x}", [f"s.yaml:7:10: engine.args.served-model: 'served-model' abbreviates 'served-model-name', which is {SERVED}"]),
        ("sglang", "{model-p: x}", [f"s.yaml:7:10: engine.args.model-p: 'model-p' abbreviates 'model-path', which is {MODEL}"]),
    ],
)  # fmt: skip
def test_fixed_args_the_launcher_sets_are_refused(runtime: str, args: str, expected: list[str]) -> None:
    assert problems(engine(runtime, args)) == expected


def test_parameters_the_launcher_sets_are_refused_at_their_key() -> None:
    text = mutate("  threads: [1, 2]\n", "  threads: [1, 2]\n  port: [8000, 8001]\n")
    assert problems(text) == [f"s.yaml:12:3: parameters.port: 'port' is {PORT}"]


def test_every_launcher_that_starts_engines_refuses_them() -> None:
    text = engine("vllm", "{port: 9000}", launcher="docker")
    assert problems(text) == [f"s.yaml:8:10: engine.args.port: 'port' is {PORT}"]


def test_every_runtime_owns_its_address_and_model() -> None:
    for runtime, profile in PROFILES.items():
        owned = launcher_flags(runtime)
        assert {"host", "port", profile.model_flag.removeprefix("--")} <= set(owned), runtime
        if profile.served_name_flag is not None:
            assert profile.served_name_flag.removeprefix("--") in owned, runtime


def test_other_flags_and_namespaces_are_not_affected() -> None:
    text = mutate("  threads: [1, 2]\n", "  threads: [1, 2]\n  env.port: ['1']\n  request.model: [a]\n")
    text = mutate("args: {n-ctx: 4096}", "args: {n-ctx: 4096, portable: true, model-draft: x}", text)
    assert load_spec_text("s.yaml", text, environ={}).spec.engine.args["portable"] is True


def test_the_shipped_specs_still_validate() -> None:
    assert len(load_specs([REPO / "tuning_specs"])) >= 5  # with this environment (a spec reads HOME)


def test_validate_exits_2_with_the_located_message(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(engine("llamacpp", "{n-ctx: 4096, port: 9000}"))
    out = io.StringIO()
    assert main(["validate", "--no-engine-flags", str(spec)], out=out) == 2
    assert out.getvalue().splitlines()[0] == f"{spec}:7:23: engine.args.port: 'port' is {PORT}"
