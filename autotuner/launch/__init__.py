"""Launchers: start an engine for a trial (process, docker, kubernetes, endpoint) and stop it without a trace."""

from __future__ import annotations

from collections.abc import Mapping

from .base import Deployment, InfrastructureError, Launcher, LaunchFailed, LaunchRequest, Mount
from .endpoint import EndpointLauncher
from .process import ProcessLauncher
from .readiness import wait_until_ready

__all__ = [
    "Deployment",
    "EndpointLauncher",
    "InfrastructureError",
    "LaunchFailed",
    "LaunchRequest",
    "Launcher",
    "Mount",
    "ProcessLauncher",
    "launcher_for",
    "wait_until_ready",
]


def launcher_for(kind: str, settings: Mapping[str, str] | None = None) -> Launcher:
    """The launcher for a spec's ``engine.launcher``; docker and kubernetes import their SDKs only when used.

    ``settings`` are the spec's ``engine.kubernetes`` (cluster, namespace), so reaping looks in the right place.
    """
    if kind == "process":
        return ProcessLauncher()
    if kind == "endpoint":
        return EndpointLauncher()
    if kind == "docker":
        from .docker import DockerLauncher

        return DockerLauncher()
    if kind == "kubernetes":
        from .kubernetes import KubernetesLauncher

        return KubernetesLauncher(settings)
    raise ValueError(f"unknown launcher {kind!r}")
