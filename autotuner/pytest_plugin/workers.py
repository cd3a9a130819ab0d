"""pytest-xdist: workers share each spec's study through storage, and each worker gets its own GPUs.

Why storage is required: every xdist worker is its own process with its own study; only a shared Optuna storage
lets them see each other's trials, so that a config is measured once and the verdict judges every worker's
results. Without one, each worker would run a private study and the verdicts would judge fragments, so the
plugin refuses xdist with a message that says what to add.

Why GPU sets: two engines on one GPU slow each other down (and may run out of memory), which would make the
measurements meaningless. Worker ``gwN`` gets GPUs ``[N*k, (N+1)*k)``; the launch plan turns that into
``CUDA_VISIBLE_DEVICES`` for engine processes and into Docker device requests for containers (see
``autotuner.launch.plan.GPU_DEVICES_VARIABLE``). Kubernetes schedules GPUs itself, so nothing is assigned there.
"""

from __future__ import annotations

import os
import re

import pytest

from ..launch.plan import GPU_DEVICES_VARIABLE


def worker_index(config: pytest.Config) -> int | None:
    """N for xdist worker ``gwN``; None in the controller or without xdist."""
    workerinput = getattr(config, "workerinput", None)
    name = workerinput.get("workerid") if isinstance(workerinput, dict) else None
    name = name or os.environ.get("PYTEST_XDIST_WORKER")
    match = re.fullmatch(r"gw(\d+)", str(name or ""))
    return int(match.group(1)) if match else None


def is_worker(config: pytest.Config) -> bool:
    return worker_index(config) is not None


def uses_xdist(config: pytest.Config) -> bool:
    """True in the controller of an xdist run that distributes tests (``-n N`` with N > 0, or ``--dist``)."""
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    return bool(numprocesses) or dist not in (None, "no")


def gpu_devices(index: int, per_worker: int) -> str:
    """``"2,3"`` for worker 1 with 2 GPUs each: the ids worker ``gw<index>`` may use."""
    return ",".join(str(gpu) for gpu in range(index * per_worker, (index + 1) * per_worker))


def refuse_without_storage(storage: str | None) -> None:
    if storage is None:
        raise pytest.UsageError(
            "pytest --tune with pytest-xdist needs a shared study: add --tune-storage (e.g. "
            "--tune-storage sqlite:///tuning.db, or postgresql://... for workers on several machines), or run "
            "without -n. Each xdist worker is a separate process, and only a shared storage lets the workers split "
            "the configs between them and lets the verdict see every worker's results."
        )


def prepare_storage(storage: str, heartbeat: int) -> None:
    """Open the shared storage once in the controller, before the workers start: on a fresh SQLite file, workers
    creating Optuna's tables at the same moment collide ("table version_info already exists")."""
    from ..storage import open_storage

    try:
        open_storage(storage, heartbeat=heartbeat)
    except Exception as exc:  # noqa: BLE001 - any driver or connection error: say which option is at fault
        raise pytest.UsageError(f"--tune-storage {storage}: cannot open it: {exc}") from None


def assign_gpus(config: pytest.Config, per_worker: int) -> str | None:
    """In an xdist worker with ``--tune-gpus-per-worker K``: claim this worker's GPUs for the engines it starts."""
    index = worker_index(config)
    if index is None or per_worker <= 0:
        return None
    devices = gpu_devices(index, per_worker)
    os.environ[GPU_DEVICES_VARIABLE] = devices
    return devices
