"""The ``autotuner`` command's entry point (the console script and ``python -m autotuner``).

It imports nothing heavy itself, so that a Ctrl-C while the tool is still loading (pydantic, optuna and the spec
models take a second or two) ends like any other interrupt: "autotuner: interrupted" and exit 130, not a
KeyboardInterrupt traceback from inside an import and a process killed by SIGINT (-2), which a CI runner reports as
a crash. Nothing has run at that point, so there is nothing to resume.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # for an interrupt while loading, and (``autotuner.cli``) while a command runs


def main() -> int:
    """Load the command line and run it (``autotuner.cli.main``)."""
    try:
        from .cli import main as command
    except KeyboardInterrupt:
        print("autotuner: interrupted while starting: nothing was run", file=sys.stderr)
        return EXIT_INTERRUPTED
    return command()
