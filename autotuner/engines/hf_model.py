"""A Hugging Face model directory derived from a GGUF file, for engines that cannot load GGUF (vLLM on CPU).

Why: the builtin model ships as a GGUF, which llama.cpp serves directly but vLLM does not. The conversion needs
torch and transformers, which live in the engine's own environment, so it runs there as a script
(``gguf_to_hf.py``) while this module, importable without torch, decides when it is needed.

Cache: ``~/.cache/autotuner/models/<stem>-<dtype>-<sha256[:16]>/`` (``AUTOTUNER_MODEL_CACHE`` moves it), keyed by the
GGUF's content hash (hashing the 98 MB SmolLM2 file takes about 0.4 s; the conversion about 20 s). A directory is
built under a temporary name and renamed into place when complete, so a half-written one is never used; a file
lock makes a second process wait for the first one's conversion instead of repeating it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from .flags import engine_python
from .scripts import script_argv

CONVERTER = Path(__file__).with_name("gguf_to_hf.py")
SOURCE_FILE = "autotuner-source.json"  # written into every derived directory: what it was made from, and how
CONVERSION_TIMEOUT = 900.0


class ModelConversionError(RuntimeError):
    """The engine's interpreter could not convert the GGUF (missing packages, unsupported architecture)."""


def cache_root() -> Path:
    return Path(os.environ.get("AUTOTUNER_MODEL_CACHE") or Path.home() / ".cache" / "autotuner" / "models")


def file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Hash once per process for an unchanged file (size and mtime are part of the cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def hf_model_dir(gguf: Path, python: str | None = None, *, dtype: str = "bfloat16", cache: Path | None = None) -> Path:
    """The converted directory for ``gguf``, converting it if needed with ``python``: an interpreter with torch,
    transformers, gguf and accelerate; by default the vLLM one (``flags.engine_python``: its venv has all four)."""
    gguf = Path(gguf)
    if not gguf.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf}")
    root = cache or cache_root()
    target = root / f"{gguf.stem}-{dtype}-{file_sha256(gguf)[:16]}"
    if _complete(target):
        return target
    converter = python or engine_python("vllm")
    if converter is None:
        raise ModelConversionError(
            f"converting {gguf.name} to a Hugging Face directory needs an interpreter with torch and transformers: "
            "run `bash .ci/vllm-env.sh` or set AUTOTUNER_VLLM_PYTHON"
        )
    root.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if _complete(target):  # another process converted it while this one waited
            return target
        _convert(gguf, target, converter, dtype)
    return target


def _complete(directory: Path) -> bool:
    return (directory / SOURCE_FILE).is_file() and (directory / "config.json").is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if this process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(gguf: Path, target: Path, python: str, dtype: str) -> None:
    work = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    argv = script_argv(python, CONVERTER, str(gguf), str(work), dtype)
    try:
        done = subprocess.run(  # noqa: S603 - an argument list
            argv, capture_output=True, text=True, env=env, timeout=CONVERSION_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise ModelConversionError(f"cannot convert {gguf.name}: interpreter {python} not found") from None
    except subprocess.TimeoutExpired:
        shutil.rmtree(work, ignore_errors=True)
        raise ModelConversionError(f"converting {gguf.name} took more than {CONVERSION_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise ModelConversionError(f"converting {gguf.name} with {python} failed (exit {done.returncode}):\n{tail}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    source = {"gguf": str(gguf), "sha256": file_sha256(gguf), "python": python, **summary}
    (work / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)  # an incomplete leftover (no SOURCE_FILE) from an older layout
    os.replace(work, target)
