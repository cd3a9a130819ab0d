"""Secrets a spec template copies into values never come back out: not in error messages, not in the launch
command written to results.json and the report (found by ``benchmarks/leaks.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.launch.command import command_line
from autotuner.launch.plan import launch_request
from autotuner.space import Config
from autotuner.spec import SpecError
from autotuner.validation import load_spec_text

from .specs import mutate

TOKEN = "hf_echoedSecret0123456789"


def test_an_error_message_never_quotes_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    text = mutate("runtime: llamacpp", "runtime: '{{ env.HF_TOKEN }}'")
    with pytest.raises(SpecError) as caught:
        load_spec_text("s.yaml", text)
    shown = str(caught.value) + " ".join(p.message for p in caught.value.problems)
    assert "engine.runtime: unknown value '***'" in shown
    assert TOKEN not in shown


@pytest.mark.parametrize("launcher", ["process", "docker"])
def test_the_launch_command_masks_a_secret_under_any_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, launcher: str
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    text = mutate("  args: {n-ctx: 4096}", "  args: {n-ctx: 4096}\n  env: {COPIED: '{{ env.GITHUB_TOKEN }}'}")
    if launcher == "docker":
        text = mutate("launcher: process", "launcher: docker\n  image: ghcr.io/org/engine:1", text)
    loaded = load_spec_text("s.yaml", text)
    config = Config.of({"n-parallel": 1, "threads": 2, "n-batch": 256})
    request = launch_request(loaded, config, run_id="r", name="best", log_dir=tmp_path)
    assert request.env["COPIED"] == TOKEN  # the engine still gets it
    command = command_line(request, launcher)
    assert TOKEN not in command and "COPIED=***" in command


def test_a_storage_url_password_is_not_echoed(tmp_path: Path) -> None:
    """``--storage`` URLs carry database passwords: neither the "no driver" error nor the "how to resume" hint of an
    interrupted or out-of-space ``tune`` repeats one."""
    import argparse

    from autotuner.cli import _resume_hint
    from autotuner.storage import StorageError, open_storage

    url = "mysql://tuner:Pr0xyPassw0rd@db.example/studies"  # no MySQL driver here: refused before connecting
    with pytest.raises(StorageError) as caught:
        open_storage(url)
    assert "Pr0xyPassw0rd" not in str(caught.value) and "tuner:***@db.example" in str(caught.value)
    hint = _resume_hint(argparse.Namespace(storage=url.replace("mysql", "postgresql"), spec="s.yaml"))
    assert hint == "resume with: autotuner tune s.yaml --storage postgresql://tuner:***@db.example/studies --resume"
