"""``python -m autotuner.docgen [--check] [--docs DIR]``: write the generated pages, or check they are current."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import stale, write


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autotuner.docgen", description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("docs"), metavar="DIR", help="the docs folder (docs)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a generated page differs from the code"
    )
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.docs)
        for name in outdated:
            print(f"{args.docs / name}: out of date: run python -m autotuner.docgen", file=sys.stderr)
        return 1 if outdated else 0
    for path in write(args.docs):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
