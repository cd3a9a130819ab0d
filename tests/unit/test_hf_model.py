"""The GGUF -> Hugging Face cache: converts once per file content, atomically, one process at a time.

The real conversion needs torch (tests/integration/test_vllm.py does it with the vLLM venv); here a stand-in
interpreter plays the converter so the cache, the lock and the error paths are tested in milliseconds.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from autotuner.engines.hf_model import SOURCE_FILE, ModelConversionError, file_sha256, hf_model_dir

# Called as: python -c BOOTSTRAP gguf_to_hf.py GGUF OUT DTYPE -> $5 is OUT. Counts its runs in $CALLS.
FAKE_CONVERTER = """#!/bin/sh
echo run >> "$CALLS"
sleep 0.3
mkdir -p "$5" && echo '{"model_type": "llama"}' > "$5/config.json"
echo '{"architecture": "LlamaForCausalLM", "dtype": "'"$6"'", "parameters": 1, "seconds": 0.3}'
"""
FAILING_CONVERTER = """#!/bin/sh
mkdir -p "$5"
echo "ValueError: accelerate is required when loading a GGUF file" >&2
exit 1
"""


def interpreter(tmp_path: Path, text: str) -> str:
    path = tmp_path / "python"
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.Q4_1.gguf"
    path.write_bytes(b"GGUF" + bytes(1000))
    return path


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls"
    monkeypatch.setenv("CALLS", str(path))
    return path


def test_converts_once_then_reuses(tmp_path: Path, gguf: Path, calls: Path) -> None:
    python = interpreter(tmp_path, FAKE_CONVERTER)
    first = hf_model_dir(gguf, python, cache=tmp_path / "cache")
    second = hf_model_dir(gguf, python, cache=tmp_path / "cache")
    assert first == second == tmp_path / "cache" / f"tiny.Q4_1-bfloat16-{file_sha256(gguf)[:16]}"
    assert calls.read_text().count("run") == 1
    source = json.loads((first / SOURCE_FILE).read_text())
    assert source["sha256"] == file_sha256(gguf) and source["architecture"] == "LlamaForCausalLM"
    assert [p.name for p in (tmp_path / "cache").iterdir() if ".tmp-" in p.name] == []


def test_changed_content_is_converted_again(tmp_path: Path, gguf: Path, calls: Path) -> None:
    python = interpreter(tmp_path, FAKE_CONVERTER)
    first = hf_model_dir(gguf, python, cache=tmp_path / "cache")
    gguf.write_bytes(b"GGUF" + bytes(2000))
    assert hf_model_dir(gguf, python, cache=tmp_path / "cache") != first
    assert calls.read_text().count("run") == 2


def test_two_at_once_convert_once(tmp_path: Path, gguf: Path, calls: Path) -> None:
    python = interpreter(tmp_path, FAKE_CONVERTER)
    found: list[Path] = []
    threads = [
        threading.Thread(target=lambda: found.append(hf_model_dir(gguf, python, cache=tmp_path / "cache")))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2 and found[0] == found[1]
    assert calls.read_text().count("run") == 1


def test_failure_says_why_and_leaves_nothing(tmp_path: Path, gguf: Path) -> None:
    python = interpreter(tmp_path, FAILING_CONVERTER)
    with pytest.raises(ModelConversionError, match="accelerate is required"):
        hf_model_dir(gguf, python, cache=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_missing_interpreter(tmp_path: Path, gguf: Path) -> None:
    with pytest.raises(ModelConversionError, match="not found"):
        hf_model_dir(gguf, str(tmp_path / "nothing" / "python"), cache=tmp_path / "cache")


def test_no_interpreter_at_all(tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("autotuner.engines.hf_model.engine_python", lambda runtime: None)
    with pytest.raises(ModelConversionError, match="vllm-env.sh"):
        hf_model_dir(gguf, cache=tmp_path / "cache")
