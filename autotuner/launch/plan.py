"""From a spec and a config to a ``LaunchRequest``: the one place that decides what an engine is started with.

Order of flags: the spec's fixed ``engine.args`` first, then the config's parameters (a parameter never repeats a
fixed arg; validation refuses that). ``env.*`` parameters become engine environment variables and ``request.*``
parameters are client-side (they never reach the engine's command line).

GPU sets: when ``AUTOTUNER_GPU_DEVICES`` is set in the tool's environment (``pytest --tune`` with xdist sets it per
worker from ``--tune-gpus-per-worker``), engines see only those GPUs: ``CUDA_VISIBLE_DEVICES`` for processes, a
Docker device request for those ids for containers (Docker refuses the variable with device requests).

Interpreter (process launcher): ``engine.python``, else the one the flag check uses (``engines.flags.engine_python``:
``AUTOTUNER_VLLM_PYTHON``, the venv in ``AUTOTUNER_VLLM_VENV`` or ``~/.cache/autotuner/venvs/vllm-cpu``), else
ours. The engine must run where its flags were checked: a vLLM spec without ``engine.python`` had its flags checked
in the vLLM venv and then started ``python -m vllm...`` with our interpreter, which has no vLLM.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..engines.flags import engine_python
from ..engines.model import resolve_model
from ..engines.profile import FlagValue, split_flags
from ..engines.runtimes import profile_for
from ..space import Config
from ..validation import LoadedSpec
from .base import LaunchRequest, Mount
from .environment import engine_environment

GPU_DEVICES_VARIABLE = "AUTOTUNER_GPU_DEVICES"


def launch_request(loaded: LoadedSpec, config: Config, *, run_id: str, name: str, log_dir: Path) -> LaunchRequest:
    spec = loaded.spec
    engine = spec.engine
    profile = profile_for(engine.runtime)
    model = resolve_model(spec.model, engine.runtime, loaded.path.parent)
    flags, config_env, _request_fields = split_flags(config.as_dict())
    all_flags: dict[str, FlagValue] = {**engine.args, **flags}
    mounts: tuple[Mount, ...] = ()
    if engine.launcher == "docker" and model.local_path is not None:
        folder = model.local_path if model.local_path.is_dir() else model.local_path.parent
        mounts = (Mount(folder, str(folder), read_only=True),)
    extra: dict[str, str] = dict(engine.kubernetes) if engine.launcher == "kubernetes" else {}
    if engine.url:
        extra["url"] = engine.url
    if engine.launcher == "docker" and engine.python:
        extra["python"] = engine.python  # the interpreter inside the image
    env = engine_environment(engine.env, config_env)
    devices = os.environ.get(GPU_DEVICES_VARIABLE, "").strip()
    if devices and engine.launcher == "process":
        env["CUDA_VISIBLE_DEVICES"] = devices
    elif devices and engine.launcher == "docker":
        extra["gpu_devices"] = devices
    return LaunchRequest(
        run_id=run_id,
        name=name,
        profile=profile,
        model=model.reference,
        served_name=model.served_name,
        flags=all_flags,
        env=env,
        log_dir=log_dir,
        startup_timeout=engine.startup_timeout.total_seconds(),
        python=engine_python(engine.runtime, engine.python) if engine.launcher == "process" else engine.python,
        # kubernetes keeps the serving runtime's own image unless the spec pins one
        image=engine.image if engine.launcher == "kubernetes" else engine.image or profile.default_image,
        gpus=engine.gpus,
        mounts=mounts,
        extra=extra,
    )
