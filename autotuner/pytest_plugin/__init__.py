"""``pytest --tune``: tuning specs as a test suite (registered through the ``pytest11`` entry point).

This module holds the two hooks every run needs (options, configure); the rest are methods of ``TunePlugin``,
registered only with ``--tune``, so that without it pytest behaves exactly as it would without this plugin.
The pieces: ``options`` (``--tune-*`` and ini twins), ``items`` (spec files; config, trial and verdict tests),
``runs`` (one lazily opened tuning session per spec), ``judge`` (records -> outcomes, messages, junit
properties), ``reporting`` and ``benchmark`` (terminal summary, pytest-benchmark JSON), ``workers`` (xdist).
"""

from __future__ import annotations

import pytest

from .items import ConfigItem, SpecFile, TrialItem, VerdictItem
from .options import add_options, read_settings
from .plugin import TunePlugin
from .state import STATE_KEY, TuneState
from .workers import assign_gpus, is_worker, prepare_storage, refuse_without_storage, uses_xdist

__all__ = ["ConfigItem", "SpecFile", "TrialItem", "TunePlugin", "VerdictItem"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    settings = read_settings(config)  # bad values are refused even without --tune: a typo should not wait
    if not settings.enabled:
        return
    if uses_xdist(config) and not is_worker(config):
        refuse_without_storage(settings.storage)
        assert settings.storage is not None
        prepare_storage(settings.storage, settings.heartbeat)
    assign_gpus(config, settings.gpus_per_worker)
    state = TuneState.create(config, settings)
    config.stash[STATE_KEY] = state
    if config.args_source != pytest.Config.ArgsSource.ARGS and not is_worker(config):
        existing = [str(p) for p in settings.specs if p.exists()]
        if not existing:
            where = ", ".join(str(p) for p in settings.specs)
            raise pytest.UsageError(f"--tune: no paths given and no spec folder found ({where}); pass spec paths")
        config.args = existing
    config.pluginmanager.register(TunePlugin(state), "autotuner-tune")
