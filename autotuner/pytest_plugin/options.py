"""The plugin's options: ``--tune`` and the ``--tune-*`` family, their ini equivalents, and checking their values.

Every option has an ini twin (``tune_max_trials = 4`` in ``[tool.pytest.ini_options]``) so a project can pin its
tuning setup in one place; the command line wins over the ini file. Bad values are refused before anything is
collected or launched: on the command line by argparse (``error: argument --tune-max-trials: ...``), from the
ini file by a ``pytest.UsageError`` naming the ini key. Paths given on the command line are relative to where
pytest was started; paths from the ini file are relative to the rootdir, as pytest does for its own ini paths.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..argtypes import non_negative_int, positive_int
from ..units import parse_duration

LAUNCHERS = ("process", "docker", "kubernetes", "endpoint")
DEFAULT_SPECS = "tuning_specs"
T = TypeVar("T")


@dataclass(frozen=True)
class TuneSettings:
    """What ``--tune`` was asked to do, checked and resolved (one value per option, CLI over ini)."""

    enabled: bool = False
    specs: tuple[Path, ...] = ()  # where specs are collected from when no path is given
    storage: str | None = None  # an Optuna storage URL shared by xdist workers and later runs
    max_trials: int | None = None
    timeout: float | None = None  # seconds: the time budget of each spec's study
    report_dir: Path = Path("reports")
    baseline: Path | None = None  # baseline results (a file, or a folder with <spec>/baseline.json)
    strict: bool = False  # an infeasible or failed config fails instead of xfailing
    launcher: str | None = None  # overrides every spec's engine.launcher
    gpus_per_worker: int = 0  # xdist worker gwN gets GPUs [N*k, (N+1)*k)
    benchmark_json: Path | None = None  # pytest-benchmark-compatible export
    heartbeat: int = 30  # seconds between trial heartbeats on SQL storages


# ------------------------------------------------------------------------------------------------ value checks
def duration_seconds(text: str) -> float:
    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration such as 30m, got {text!r}")
    return seconds


def storage_url(text: str) -> str:
    """The forms ``autotuner.storage.open_storage`` accepts; opening (and its driver errors) happens later."""
    text = text.strip()
    if text.startswith("journal:") or text.endswith((".journal", ".log")) or "://" in text:
        return text
    raise argparse.ArgumentTypeError(
        f"expected a SQLAlchemy URL (sqlite:///study.db, postgresql://user:pw@host/db) or a journal file "
        f"(journal:PATH, or a path ending in .journal or .log), got {text!r}"
    )


def launcher(text: str) -> str:
    if text not in LAUNCHERS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LAUNCHERS)}, got {text!r}")
    return text


# ------------------------------------------------------------------------------------------------ registration
_OPTIONS: list[tuple[str, str, Callable[[str], Any] | None, str]] = [
    # (option suffix, metavar, converter or None for flags, help)
    ("storage", "URL", storage_url, "Optuna storage of the studies (sqlite:///study.db, postgresql://..., journal:PATH); "
     "needed to share a study between xdist workers; a run continues (or joins) the study it finds there"),
    ("max-trials", "N", positive_int, "override each spec's search.max_trials (the baseline counts)"),
    ("timeout", "DURATION", duration_seconds, "time budget of each spec's study, e.g. 30m (overrides search.timeout)"),
    ("report-dir", "DIR", None, "where results.json, reports and engine logs go: DIR/<spec>/<run-id>/ (default reports)"),
    ("baseline", "PATH", None, "baseline results to compare with: a results.json, or a folder holding "
     "<spec>/baseline.json (regression detection)"),
    ("strict", "", None, "an infeasible or failed config fails its test instead of xfailing"),
    ("launcher", "KIND", launcher, f"override every spec's engine.launcher ({', '.join(LAUNCHERS)})"),
    ("gpus-per-worker", "K", non_negative_int, "with pytest-xdist, worker gwN gets GPUs N*K..(N+1)*K-1 "
     "(CUDA_VISIBLE_DEVICES for processes, device requests for containers); default 0: no assignment"),
    ("benchmark-json", "PATH", None, "write the measured objectives as pytest-benchmark JSON (github-action-benchmark)"),
    ("heartbeat", "SECONDS", positive_int, "trial heartbeat interval on SQL storages (default 30)"),
]  # fmt: skip


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("autotuner", "inference-autotuner: tuning specs as tests")
    group.addoption(
        "--tune",
        action="store_true",
        default=False,
        help="collect tuning specs (*.yaml, *.yml under the given paths; default: the tune_specs ini value, tuning_specs/) "
        "as tests: one per candidate config and a verdict per spec",
    )
    parser.addini("tune_specs", "where `pytest --tune` collects specs when no path is given", type="args")
    for suffix, metavar, convert, help_text in _OPTIONS:
        dest = "tune_" + suffix.replace("-", "_")
        if convert is None and not metavar:
            group.addoption(f"--tune-{suffix}", action="store_true", default=None, dest=dest, help=help_text)
            parser.addini(dest, f"ini twin of --tune-{suffix}", type="bool", default=False)
            continue
        kwargs: dict[str, Any] = {"type": convert} if convert is not None else {}
        group.addoption(f"--tune-{suffix}", metavar=metavar, default=None, dest=dest, help=help_text, **kwargs)
        parser.addini(dest, f"ini twin of --tune-{suffix}", type="string", default="")


def _value(config: pytest.Config, dest: str, convert: Callable[[str], T]) -> tuple[T | None, bool]:
    """(value, came from the ini file): the command line first, then the ini file (checked here)."""
    given = config.getoption(dest)
    if given is not None:
        return given, False
    raw = str(config.getini(dest) or "").strip()
    if not raw:
        return None, False
    try:
        return convert(raw), True
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini option {dest} = {raw!r}: {exc}") from None


def _path(config: pytest.Config, dest: str) -> Path | None:
    value, from_ini = _value(config, dest, str)
    if value is None:
        return None
    base = config.rootpath if from_ini else config.invocation_params.dir
    return base / Path(value).expanduser()


def read_settings(config: pytest.Config) -> TuneSettings:
    """Resolve and check every option once; raises ``pytest.UsageError`` with the option's name on a bad value."""
    enabled = bool(config.getoption("tune"))
    specs = [config.rootpath / s for s in (config.getini("tune_specs") or [DEFAULT_SPECS])]
    strict_cli = config.getoption("tune_strict")
    strict = bool(strict_cli) if strict_cli is not None else bool(config.getini("tune_strict"))
    baseline = _path(config, "tune_baseline")
    if enabled and baseline is not None and not baseline.exists():
        raise pytest.UsageError(f"--tune-baseline {baseline}: no such file or folder")
    report_dir = _path(config, "tune_report_dir") or config.invocation_params.dir / "reports"
    if report_dir.exists() and not report_dir.is_dir():
        raise pytest.UsageError(f"--tune-report-dir {report_dir}: exists and is not a folder")
    return TuneSettings(
        enabled=enabled,
        specs=tuple(specs),
        storage=_value(config, "tune_storage", storage_url)[0],
        max_trials=_value(config, "tune_max_trials", positive_int)[0],
        timeout=_value(config, "tune_timeout", duration_seconds)[0],
        report_dir=report_dir,
        baseline=baseline,
        strict=strict,
        launcher=_value(config, "tune_launcher", launcher)[0],
        gpus_per_worker=_value(config, "tune_gpus_per_worker", non_negative_int)[0] or 0,
        benchmark_json=_path(config, "tune_benchmark_json"),
        heartbeat=_value(config, "tune_heartbeat", positive_int)[0] or 30,
    )
