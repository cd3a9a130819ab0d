"""A longer study keeps the tuner and the genai-bench worker flat in memory and open files.

The 200-trial figures: ``python benchmarks/soak.py``; here 40 trials, sampled every 5.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soak

pytestmark = pytest.mark.slow


def test_memory_and_open_files_stay_flat(tmp_path: Path) -> None:
    verdict = soak.soak(tmp_path, trials=40, every=5, tolerance=0.15)
    print("\n" + soak.table(verdict.samples) + "\n" + verdict.summary())
    assert verdict.flat, verdict.problems


def test_growth_is_detected() -> None:
    def sample(trial: int, rss: float, fds: int) -> soak.Sample:
        return soak.Sample(trial, 0.0, rss, fds, 4, None, None, 3)

    flat = [sample(i, 100.0 + (i % 2) * 0.5, 20) for i in range(8)]  # noise, no trend
    assert soak.judge(flat, 0.15) == []
    leaking = [sample(i, 100.0 + i * 10, 20 + i) for i in range(8)]
    assert len(soak.judge(leaking, 0.15)) == 3  # RSS over the tolerance, RSS per trial, open files
    in_flight = [sample(i, 100.0, 29 if i == 6 else 20) for i in range(8)]  # one sample catches a socket
    assert soak.judge(in_flight, 0.15) == []
    # 60 KiB per trial (a record held three times): within 15% over 8 trials, and still a leak
    creeping = [sample(i * 10, 100.0 + i * 10 * 60 / 1024, 20) for i in range(8)]
    assert soak.judge(creeping, 0.15) == ["tuner RSS grows 60 KiB per trial (> 40)"]
