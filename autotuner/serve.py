"""``autotuner serve``: start the engine for one config of a spec by hand, and stop it cleanly on Ctrl-C.

Useful to look at a config before tuning (is it ready? what does its log say?) and to run the best config
afterwards. It goes through exactly the code a trial uses (plan -> launcher -> readiness), so what works here
works in a study.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .launch import LaunchFailed, launcher_for, wait_until_ready
from .launch.plan import launch_request
from .launch.signals import graceful_termination
from .space import Config
from .validation import LoadedSpec


class ConfigNotFound(ValueError):
    pass


def select_config(loaded: LoadedSpec, selector: str | None) -> Config:
    """``baseline``, a config's hash, or its readable id; default: the baseline, else the first grid config."""
    spec, space = loaded.spec, loaded.space
    if selector in (None, "baseline") and spec.search.baseline is not None:
        return Config.of(spec.search.baseline)
    if selector == "baseline":
        raise ConfigNotFound(f"{spec.name} has no search.baseline")
    if not space.is_finite:
        if selector is None:
            raise ConfigNotFound("the space is continuous: give --config with every parameter (name=value,...)")
        return parse_config_id(selector, loaded)
    for config in space.grid():
        if selector is None or selector in (config.hash, config.id):
            return config
    if selector is not None and "=" in selector:
        return parse_config_id(selector, loaded)
    raise ConfigNotFound(f"no config {selector!r} in {spec.name} (list them with: autotuner space {loaded.path})")


def parse_config_id(text: str, loaded: LoadedSpec) -> Config:
    """``n-parallel=2,threads=1`` -> Config, each value typed like its dimension's values."""
    import yaml

    values = {}
    for part in text.split(","):
        name, sep, raw = part.partition("=")
        if not sep or name not in loaded.spec.parameters:
            raise ConfigNotFound(f"{part!r} is not name=value for a parameter of {loaded.spec.name}")
        values[name] = yaml.safe_load(raw)
    return Config.of(values)


def serve(
    loaded: LoadedSpec,
    config: Config,
    *,
    log_dir: Path,
    out: TextIO,
    until: Callable[[], bool] = lambda: False,
) -> int:
    """Start, wait until ready, print how to reach it, then keep it up until interrupted (or ``until()``)."""
    spec = loaded.spec
    run_id = f"serve-{uuid.uuid4().hex[:8]}"
    launcher = launcher_for(spec.engine.launcher, spec.engine.kubernetes)
    for stopped in launcher.reap():
        print(f"stopped an engine left by an earlier run: {stopped}", file=out)
    request = launch_request(loaded, config, run_id=run_id, name=f"serve-{config.hash}", log_dir=log_dir)
    print(
        f"starting {spec.engine.runtime} ({spec.engine.launcher}) with {config.id} [{config.hash}]",
        file=out,
        flush=True,
    )
    with graceful_termination():
        try:
            with launcher.start(request) as deployment:
                try:
                    took = wait_until_ready(
                        deployment,
                        request.profile,
                        request.startup_timeout,
                        progress=lambda _elapsed, text: print(text, file=out, flush=True),
                    )
                except LaunchFailed as failure:
                    print(f"engine failed to start: {failure.kind.value}: {failure.message}", file=out)
                    print(f"log: {deployment.log_path}\n--- last lines ---\n{failure.log_tail}", file=out, flush=True)
                    return 3
                print(
                    f"ready in {took:.1f}s at {deployment.url} (model {request.served_name!r}); "
                    f"log: {deployment.log_path}; Ctrl-C to stop",
                    file=out,
                    flush=True,
                )
                while not until():
                    if deployment.exit_code() is not None:
                        print(
                            f"engine exited with code {deployment.exit_code()}; log: {deployment.log_path}",
                            file=out,
                            flush=True,
                        )
                        return 3
                    time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopped", file=out, flush=True)
            return 0
    return 0
