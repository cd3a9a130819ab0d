"""The HTML report as a person sees it: rendered by headless Chromium, screenshot checked for content.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it). Without it the test
skips, except under ``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from autotuner.report import write_report
from autotuner.results import StudyResult

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "smollm2-cpu-tpe-results.json"  # a real run, current schema
WIDTH, HEIGHT = 1280, 2400
CHART_GREEN = (0x00, 0x9E, 0x73)  # style.GREEN: the best config's star, only ever drawn in the charts


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    return found


def screenshot(browser: str, page: Path, shot: Path, profile: Path) -> None:
    """One headless screenshot; the browser runs in its own process group, killed whole if it hangs."""
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("chromium did not finish the screenshot in 120 s")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # helpers it left behind, in its own group only
        except ProcessLookupError:
            pass
    assert shot.exists(), f"no screenshot (exit {process.returncode}): {err.decode(errors='replace')[-2000:]}"


def share_near(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 40) -> float:
    pixels = image.convert("RGB").resize((WIDTH // 4, HEIGHT // 4), Image.Resampling.NEAREST)
    data = pixels.tobytes()
    near = sum(
        1
        for i in range(0, len(data), 3)
        if abs(data[i] - colour[0]) + abs(data[i + 1] - colour[1]) + abs(data[i + 2] - colour[2]) < tolerance
    )
    return near / (len(data) / 3)


@pytest.mark.slow
def test_html_report_renders_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    result = StudyResult.read(FIXTURE)
    files = write_report(result, tmp_path / "report")
    html = files.html.read_text(encoding="utf-8")
    assert "Best config: <code>n-batch=768,n-parallel=2,threads=1</code>" in html
    shot = tmp_path / "shot.png"
    screenshot(browser, files.html, shot, tmp_path / "profile")
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        grey = image.convert("L")
        stat = ImageStat.Stat(grey)
        assert stat.stddev[0] > 20, f"the page looks blank (stddev {stat.stddev[0]:.1f})"
        histogram = grey.histogram()
        not_white = 1 - sum(histogram[250:]) / (WIDTH * HEIGHT)
        assert not_white > 0.05, f"only {not_white:.1%} of the page is not white"
        assert share_near(image, CHART_GREEN, 30) > 0.0002, "no chart colour on the page: images did not render"
