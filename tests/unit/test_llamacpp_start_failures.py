"""How the llama.cpp launcher names a failed start, from llama.cpp's own log lines (copied from real runs).

xllamacpp raises the same ``RuntimeError`` for every failure, so these lines are the only evidence; the phrases
``out of memory``, ``address already in use`` and ``model not found`` are what other modules classify on.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from autotuner.engines.llamacpp_server import (
    EXIT_ADDRESS_IN_USE,
    EXIT_MODEL_NOT_FOUND,
    EXIT_OUT_OF_MEMORY,
    EXIT_START_FAILED,
    StartError,
    StartFailure,
    check_address,
    check_model,
    classify_start_failure,
)

INIT_FAILED = RuntimeError("Failed to init server, please check the input params.")

OOM_LOG = """\
0.00.005.201 I srv          init: loading model
0.02.911.723 W common_fit_params: failed to fit params to free device memory: was unable to fit model into system memory by reducing context, abort
0.03.438.487 E ggml_aligned_malloc: insufficient memory (attempted to allocate 878906.25 MB)
0.03.438.510 E ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 921600000000
0.03.519.065 E llama_init_from_model: failed to initialize the context: failed to allocate buffer for kv cache
0.03.519.608 E srv          init: exiting due to model loading error
"""

BIND_LOG = """\
0.00.003.372 W srv          init: security: no API key is set and CORS allows all origins
0.00.003.469 E srv         start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8198
0.00.003.584 E srv          init: exiting due to HTTP server error
"""

MISSING_GGUF_LOG = """\
0.00.004.712 I srv    load_model: loading model '/gone.gguf'
0.00.005.088 E gguf_init_from_file: failed to open GGUF file '/gone.gguf' (No such file or directory)
0.00.005.253 E llama_model_load: error loading model: llama_model_loader: failed to load model from /gone.gguf
"""

QUANTIZED_V_LOG = """\
0.00.136.580 E llama_init_from_model: quantized V cache requires flash_attn to be enabled
0.00.158.730 E common_fit_params: encountered an error while trying to fit params to free device memory: failed to create llama_context from model
0.00.345.742 E srv          init: exiting due to model loading error
"""


@pytest.mark.parametrize(
    ("log", "error", "expected"),
    [
        (
            OOM_LOG,
            INIT_FAILED,
            StartFailure(
                "out of memory: ggml_aligned_malloc: insufficient memory (attempted to allocate 878906.25 MB)",
                EXIT_OUT_OF_MEMORY,
            ),
        ),
        ("", MemoryError("std::bad_alloc"), StartFailure("out of memory: std::bad_alloc", EXIT_OUT_OF_MEMORY)),
        (
            BIND_LOG,
            INIT_FAILED,
            StartFailure(
                "address already in use: srv start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8198",
                EXIT_ADDRESS_IN_USE,
            ),
        ),
        (
            MISSING_GGUF_LOG,
            INIT_FAILED,
            StartFailure(
                "model not found: gguf_init_from_file: failed to open GGUF file '/gone.gguf' (No such file or directory)",
                EXIT_MODEL_NOT_FOUND,
            ),
        ),
        (
            QUANTIZED_V_LOG,
            INIT_FAILED,
            StartFailure(
                "engine failed to start: llama_init_from_model: quantized V cache requires flash_attn to be enabled",
                EXIT_START_FAILED,
            ),
        ),
        (
            "",
            INIT_FAILED,
            StartFailure(
                "engine failed to start: Failed to init server, please check the input params.", EXIT_START_FAILED
            ),
        ),
    ],
    ids=["oom", "bad-alloc", "bind", "missing-gguf", "other-error-line", "empty-log"],
)
def test_classify_start_failure(log: str, error: BaseException, expected: StartFailure) -> None:
    assert classify_start_failure(log, error) == expected


def test_missing_model_is_reported_before_the_engine_starts(tmp_path: Path) -> None:
    with pytest.raises(StartError) as raised:
        check_model(tmp_path / "nope.gguf")
    assert raised.value.failure == StartFailure(f"model not found: {tmp_path / 'nope.gguf'}", EXIT_MODEL_NOT_FOUND)
    with pytest.raises(StartError):
        check_model(tmp_path)  # a directory is not a model file
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    check_model(tmp_path / "m.gguf")


def test_taken_port_is_reported_before_the_engine_starts() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StartError) as raised:
            check_address("127.0.0.1", port)
    assert raised.value.failure == StartFailure(f"address already in use: 127.0.0.1:{port}", EXIT_ADDRESS_IN_USE)
    check_address("127.0.0.1", port)  # free again once the holder closed
    check_address("127.0.0.1", 0)  # any free port: nothing to check


def test_address_not_on_this_host_is_a_start_failure_not_a_taken_port() -> None:
    with pytest.raises(StartError) as raised:
        check_address("192.0.2.1", 8080)  # TEST-NET-1: documentation only, never a local address
    assert raised.value.failure == StartFailure(
        "cannot listen on 192.0.2.1:8080: Cannot assign requested address", EXIT_START_FAILED
    )
