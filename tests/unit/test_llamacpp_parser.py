"""The llama.cpp launcher's flag vocabulary (``build_parser``), without the engine.

This parser is what specs' llamacpp flags are validated against, so names, aliases, types and rejections are the
contract tested here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from autotuner.engines.llamacpp_server import CACHE_TYPES, EXIT_USAGE, build_parser

ROOT = Path(__file__).resolve().parents[2]


def parse(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["--model", "m.gguf", *flags])


def rejected(capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """Parse flags that must fail: argparse's exit code and its message."""
    with pytest.raises(SystemExit) as exit_info:
        parse(*flags)
    assert exit_info.value.code == EXIT_USAGE
    return capsys.readouterr().err


def test_building_the_parser_does_not_import_the_engine() -> None:
    code = (
        "import sys; from autotuner.engines.llamacpp_server import build_parser; build_parser(); "
        "print('xllamacpp' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("flags", "dest", "value"),
    [
        (["--n-ctx", "4096"], "n_ctx", 4096),
        (["-c", "4096"], "n_ctx", 4096),
        (["--ctx-size", "4096"], "n_ctx", 4096),
        (["--n-parallel", "4"], "n_parallel", 4),
        (["-np", "4"], "n_parallel", 4),
        (["--parallel", "4"], "n_parallel", 4),
        (["--n-parallel", "-1"], "n_parallel", -1),
        (["--n-batch", "512"], "n_batch", 512),
        (["-b", "512"], "n_batch", 512),
        (["--batch-size", "512"], "n_batch", 512),
        (["--n-ubatch", "128"], "n_ubatch", 128),
        (["-ub", "128"], "n_ubatch", 128),
        (["--ubatch-size", "128"], "n_ubatch", 128),
        (["--threads", "2"], "threads", 2),
        (["-t", "2"], "threads", 2),
        (["--threads-batch", "1"], "threads_batch", 1),
        (["-tb", "1"], "threads_batch", 1),
        (["--poll", "0"], "poll", 0),
        (["--flash-attn", "enabled"], "flash_attn", "enabled"),
        (["-fa", "on"], "flash_attn", "on"),
        (["-fa", "off"], "flash_attn", "off"),
        (["--cache-type-k", "q8_0"], "cache_type_k", "q8_0"),
        (["-ctk", "q8_0"], "cache_type_k", "q8_0"),
        (["--cache-type-v", "q4_0"], "cache_type_v", "q4_0"),
        (["-ctv", "q4_0"], "cache_type_v", "q4_0"),
        (["--n-cache-reuse", "256"], "n_cache_reuse", 256),
        (["--cache-reuse", "256"], "n_cache_reuse", 256),
        (["--n-threads-http", "3"], "n_threads_http", 3),
        (["--threads-http", "3"], "n_threads_http", 3),
        (["--alias", "smol"], "alias", ["smol"]),
        (["-a", "smol, tiny"], "alias", ["smol", "tiny"]),
        (["--seed", "7"], "seed", 7),
        (["-s", "-1"], "seed", -1),
        (["--host", "0.0.0.0"], "host", "0.0.0.0"),
        (["--port", "8123"], "port", 8123),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_names_and_aliases_share_one_dest(flags: list[str], dest: str, value: object) -> None:
    parsed = getattr(parse(*flags), dest)
    assert parsed == value
    assert type(parsed) is type(value)


def test_model_is_required_and_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["-m", "dir/m.gguf"]).model == Path("dir/m.gguf")
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
    assert "--model" in capsys.readouterr().err


def test_unset_tunables_are_none_so_the_engine_keeps_its_defaults() -> None:
    args = parse()
    tunables = ["n_ctx", "n_parallel", "n_batch", "n_ubatch", "threads", "threads_batch", "poll", "flash_attn"]
    tunables += ["cache_type_k", "cache_type_v", "cont_batching", "cache_prompt", "n_cache_reuse", "kv_unified"]
    tunables += ["n_threads_http", "alias", "seed"]
    assert {name: getattr(args, name) for name in tunables} == dict.fromkeys(tunables)
    assert (args.host, args.port, args.metrics) == ("127.0.0.1", 8080, True)


@pytest.mark.parametrize(
    ("flags", "dest", "value"),
    [
        (["--cont-batching"], "cont_batching", True),
        (["--no-cont-batching"], "cont_batching", False),
        (["-cb"], "cont_batching", True),
        (["-nocb"], "cont_batching", False),
        (["--cache-prompt"], "cache_prompt", True),
        (["--no-cache-prompt"], "cache_prompt", False),
        (["--kv-unified"], "kv_unified", True),
        (["--no-kv-unified"], "kv_unified", False),
        (["-kvu"], "kv_unified", True),
        (["-no-kvu"], "kv_unified", False),
        (["--metrics"], "metrics", True),
        (["--no-metrics"], "metrics", False),
        (["--no-metrics", "--metrics"], "metrics", True),  # the last one wins, as in llama-server
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_booleans(flags: list[str], dest: str, value: bool) -> None:
    assert getattr(parse(*flags), dest) is value


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_every_llama_server_cache_type_is_accepted(cache_type: str) -> None:
    args = parse("-ctk", cache_type, "-ctv", cache_type)
    assert (args.cache_type_k, args.cache_type_v) == (cache_type, cache_type)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--flash-attn", "maybe"], "argument --flash-attn/-fa: invalid choice: 'maybe'"),
        (["-ctk", "q3_k"], "argument --cache-type-k/-ctk: invalid choice: 'q3_k'"),
        (["-ctv", "F16"], "argument --cache-type-v/-ctv: invalid choice: 'F16'"),
        (["--n-parallel", "0"], "argument --n-parallel/-np/--parallel: must be -1 (auto) or >= 1, got 0"),
        (["--n-parallel", "two"], "argument --n-parallel/-np/--parallel: invalid int value: 'two'"),
        (["--n-ctx", "-1"], "argument --n-ctx/-c/--ctx-size: must be >= 0, got -1"),
        (["--n-batch", "0"], "argument --n-batch/-b/--batch-size: must be >= 1, got 0"),
        (["--n-ubatch", "1.5"], "argument --n-ubatch/-ub/--ubatch-size: invalid int value: '1.5'"),
        (["--threads", "x"], "argument --threads/-t: invalid int value: 'x'"),
        (["--poll", "101"], "argument --poll: must be between 0 and 100, got 101"),
        (["--port", "70000"], "argument --port: must be between 0 and 65535, got 70000"),
        (["--seed", "-2"], "argument --seed/-s: must be between -1 and 4294967295, got -2"),
        (["--alias", " , "], "argument --alias/-a: needs at least one name"),
        (["--cont-batching=yes"], "argument --cont-batching/--no-cont-batching/-cb: ignored explicit argument 'yes'"),
        (["--n-paralel", "2"], "unrecognized arguments: --n-paralel 2"),
        (["--n-par", "2"], "unrecognized arguments: --n-par 2"),  # no abbreviations: a typo is an error
        (["--max-num-seqs", "8"], "unrecognized arguments: --max-num-seqs 8"),  # another engine's flag
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_invalid_values_exit_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert message in rejected(capsys, *flags)
