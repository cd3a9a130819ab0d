"""Charts: valid PNGs, byte-identical for the same data (also across processes), drawn only when meaningful.

What they show is tested on the info tuples (test_series.py); here only that they are drawn, and drawn the same.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

from PIL import Image

from autotuner.report import build_report
from autotuner.report.charts import all_charts, comparison_chart, timeline_chart

from .factory import failed_level, large_study, sample_study, study, trial

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[3]


def text_chunks(png: bytes) -> list[bytes]:
    """The tEXt/iTXt/zTXt chunk payloads of a PNG (where software versions and timestamps would hide)."""
    found, offset = [], len(PNG_SIGNATURE)
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        kind = png[offset + 4 : offset + 8]
        if kind in (b"tEXt", b"iTXt", b"zTXt"):
            found.append(png[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return found


def test_every_chart_is_a_png_without_varying_metadata() -> None:
    charts = all_charts(build_report(sample_study()))
    assert list(charts) == ["objective", "history", "latency_throughput", "percentiles", "timeline"]
    for name, png in charts.items():
        assert png.startswith(PNG_SIGNATURE), name
        assert not any(b"Software" in chunk or b"matplotlib" in chunk for chunk in text_chunks(png)), name
        with Image.open(io.BytesIO(png)) as image:
            assert image.size[0] >= 600 and image.size[1] >= 250, name
            assert sum(1 for n in image.convert("L").histogram() if n) > 8, f"{name} looks blank"


def test_same_data_same_bytes_in_a_fresh_interpreter() -> None:
    """No state (font cache, rc params, a previous figure) leaks into the bytes."""
    here = all_charts(build_report(sample_study()))
    script = (
        "import sys, zlib\n"
        "from autotuner.report import build_report\n"
        "from autotuner.report.charts import all_charts\n"
        "from tests.unit.report.factory import sample_study\n"
        "charts = all_charts(build_report(sample_study()))\n"
        "print(' '.join(f'{k}={zlib.crc32(v)}' for k, v in charts.items()))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [f"{k}={zlib.crc32(v)}" for k, v in here.items()]


def test_comparison_chart_only_with_a_comparison() -> None:
    data = build_report(sample_study())
    assert comparison_chart(data.comparison) is None
    baseline = sample_study()
    baseline.best_trial = 2
    with_baseline = build_report(sample_study(), baseline=baseline)
    png = comparison_chart(with_baseline.comparison)
    assert png is not None and png.startswith(PNG_SIGNATURE)


def test_large_studies_are_drawn_with_a_bounded_timeline() -> None:
    data = build_report(large_study(500))
    png = timeline_chart(data)
    assert png is not None
    with Image.open(io.BytesIO(png)) as image:
        assert image.size[1] <= 900  # 60 trials at most, at a fixed height cap


def test_a_study_without_stages_has_no_timeline() -> None:
    result = sample_study()
    for t in result.trials:
        t.stages = []
    assert timeline_chart(build_report(result)) is None


def test_a_run_whose_every_trial_failed_draws_without_a_warning() -> None:
    """Nothing to label: an empty legend would make matplotlib warn on the terminal, as if the run had a problem."""
    failed = [
        trial(n, {"n-parallel": n + 1}, [failed_level(1, "oom")], baseline=n == 0, outcome="failed", reason="oom")
        for n in range(3)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        charts = all_charts(build_report(study(failed, best=None)))
    assert charts and all(png.startswith(PNG_SIGNATURE) for png in charts.values())
