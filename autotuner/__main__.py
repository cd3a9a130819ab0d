"""``python -m autotuner`` is the ``autotuner`` command.

Under ``-m``, CPython can report an interrupt the command already handled: an interrupt that lands while code
compiled from a string runs (``exec``/``eval`` of source text, as ``dataclasses`` and ``namedtuple`` do when a
module is imported lazily, e.g. while the report is written) sets the interpreter's "unhandled
KeyboardInterrupt" flag even when the command catches it, and ``python -m`` then ends the process by SIGINT (exit
-2) instead of with the command's status (130 after "interrupted: ... resume with"). Every string evaluation
clears that flag first, so evaluating an empty one after the command returns keeps the command's status. The
``autotuner`` console script runs as a file and never checks the flag.
"""

import sys

from .entry import main

status = main()
exec("")  # noqa: S102 - clears CPython's stale "unhandled KeyboardInterrupt" flag (see above); no input involved
sys.exit(status)
