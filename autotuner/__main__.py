"""``python -m autotuner`` is the ``autotuner`` command."""

import sys

from .cli import main

sys.exit(main())
