"""With HF_TOKEN, a GitHub token and a proxy password set, no file or output of the tool contains them."""

from __future__ import annotations

from pathlib import Path

import leaks
import pytest

pytestmark = pytest.mark.slow


def test_no_secret_in_anything_the_tool_produced(tmp_path: Path) -> None:
    scan = leaks.run(tmp_path)
    print("\n" + "\n".join(scan.sources) + f"\nscanned {scan.files} files and {scan.outputs} outputs")
    assert scan.files >= 10 and scan.outputs >= 3
    assert scan.hits == []


def test_the_scan_finds_every_spelling() -> None:
    scan = leaks.Scan()
    for text in (leaks.HF_TOKEN, "Pr0xy%40Passw0rd%21", '"ghp_secretXYZ0123456789abcdefghijklmnopq"'):
        scan.search("x", text)
    assert len(scan.hits) == 3
