"""Run one of our standard-library scripts with an engine's own interpreter.

Why: vLLM and SGLang live in environments that do not have ``autotuner`` installed, so code that must run there
(reading the engine's argument parser, converting a model with its torch) is a script run by file path. Running
``python path/to/script.py`` would put the script's folder first on ``sys.path``, and ``autotuner/engines`` holds
a ``profile.py`` that would shadow the standard library's ``profile`` (which ``cProfile``, and so torch, import).
The bootstrap below runs the file without adding its folder; ``runpy.run_path`` of a plain file leaves
``sys.path`` alone.
"""

from __future__ import annotations

from pathlib import Path

BOOTSTRAP = (
    "import runpy, sys; del sys.path[0]; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def script_argv(python: str, script: Path, *args: str) -> list[str]:
    """The command that runs ``script`` with ``python`` and ``args`` (``sys.argv[1:]`` inside the script)."""
    return [python, "-c", BOOTSTRAP, str(script), *args]
