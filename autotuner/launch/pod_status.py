"""A pod's status read the way a trial needs it (pure functions over the kubernetes client's models).

Did the engine die, with which exit code and why (OOMKilled, Error, CrashLoopBackOff)? Is it blocked by something
no waiting fixes (an image that cannot be pulled, a missing Secret)? Is it Running and Ready? The answers are
written into the engine log as text, so ``EngineProfile.classify`` sees "OOMKilled ... out of memory" as an OOM
the same way it sees a CUDA OOM in the engine's own output.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kubernetes.client import V1Container, V1ContainerStateTerminated, V1ContainerStatus, V1Pod

from .inferenceservice import RUNNER_NAME

# Waiting reasons that no amount of waiting fixes: a config problem of the run, not an outcome of the trial.
FATAL_WAITING = frozenset({"InvalidImageName", "ImagePullBackOff", "ErrImageNeverPull", "CreateContainerConfigError"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def engine_pod(pods: list[V1Pod]) -> V1Pod | None:
    """The newest pod that is not being deleted, preferring OME's engine component over routers or decoders."""
    live = [p for p in pods if p.metadata is None or p.metadata.deletion_timestamp is None]
    engines = [p for p in live if ((p.metadata and p.metadata.labels) or {}).get("component", "engine") == "engine"]
    candidates = engines or live
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.metadata and p.metadata.creation_timestamp) or _EPOCH)


def pod_name(pod: V1Pod) -> str:
    return (pod.metadata.name if pod.metadata else None) or "?"


def runner(pod: V1Pod) -> V1Container | None:
    """The engine container: OME's runner name, else the only (first) container."""
    containers = pod.spec.containers if pod.spec else []
    return next((c for c in containers if c.name == RUNNER_NAME), containers[0] if containers else None)


def runner_status(pod: V1Pod) -> V1ContainerStatus | None:
    container = runner(pod)
    statuses = (pod.status.container_statuses if pod.status else None) or []
    return next((s for s in statuses if container is not None and s.name == container.name), None)


def argv(pod: V1Pod) -> list[str]:
    """The engine's command line as the pod spec says it (``$(VAR)`` references not yet expanded)."""
    container = runner(pod)
    return [*(container.command or []), *(container.args or [])] if container else []


def failure(pod: V1Pod) -> tuple[int, str] | None:
    """(exit code, reason text) once the engine has stopped by itself; None while it runs or starts.

    A restart counts as a stop: a trial measures one engine process, and a restarted one is a different one.
    """
    status = runner_status(pod)
    if status is not None:
        state, last = status.state, status.last_state.terminated if status.last_state else None
        if state is not None and state.terminated is not None:
            return _ended(status.name, state.terminated, "terminated")
        if state is not None and state.waiting is not None and state.waiting.reason == "CrashLoopBackOff":
            if last is None:
                return 1, f"container {status.name} is in CrashLoopBackOff"
            code, text = _ended(status.name, last, "crashed")
            return code, f"{text}; now in CrashLoopBackOff"
        if status.restart_count > 0 and last is not None:
            return _ended(status.name, last, "exited and was restarted")
    phase = pod.status.phase if pod.status else None
    if phase == "Failed":
        return 1, f"pod {pod_name(pod)} failed: {_reason(pod)}"
    if phase == "Succeeded":
        return 0, f"pod {pod_name(pod)} completed"
    return None


def blocker(pod: V1Pod) -> str | None:
    """Why the engine container can never start (bad image, missing Secret), or None."""
    status = runner_status(pod)
    waiting = status.state.waiting if status is not None and status.state is not None else None
    if waiting is not None and waiting.reason in FATAL_WAITING:
        return f"container {status.name if status else '?'} cannot start: {waiting.reason}: {waiting.message or ''}"
    return None


def is_serving(pod: V1Pod) -> bool:
    """Running, the pod's Ready condition true, and the engine container ready (its readiness probe passes)."""
    if pod.status is None or pod.status.phase != "Running":
        return False
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    status = runner_status(pod)
    return ready and status is not None and status.ready


def describe(pod: V1Pod) -> list[str]:
    """One line per fact worth reading in the engine log: phase, false conditions, waiting reasons."""
    status = pod.status
    lines = [f"pod {pod_name(pod)}: {(status.phase if status else None) or 'Unknown'}"]
    if status is None:
        return lines
    for condition in status.conditions or []:
        if condition.status != "True" and (condition.reason or condition.message):
            lines.append(f"  {condition.type}={condition.status} {condition.reason or ''}: {condition.message or ''}")
    for container in status.container_statuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason:
            lines.append(f"  container {container.name} waiting: {waiting.reason}: {waiting.message or ''}")
    return lines


def _ended(name: str, terminated: V1ContainerStateTerminated, verb: str) -> tuple[int, str]:
    text = f"container {name} {verb}: {terminated.reason or 'exited'} (exit code {terminated.exit_code})"
    if terminated.message:
        text += f": {terminated.message.strip()}"
    if terminated.reason == "OOMKilled":
        text += " - out of memory: the kernel killed the engine at the container's memory limit"
    return terminated.exit_code, text


def _reason(pod: V1Pod) -> str:
    status = pod.status
    return f"{(status.reason if status else None) or 'Failed'}: {(status.message if status else None) or ''}".strip()
