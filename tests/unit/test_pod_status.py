"""Reading pod statuses (as the API returns them) into exit codes and reasons the engine profiles classify."""

from __future__ import annotations

from typing import Any

from kubernetes.client import V1Pod

from autotuner.engines.profile import FailureKind
from autotuner.engines.runtimes import SGLANG, VLLM
from autotuner.launch import pod_status


def model(body: dict[str, Any]) -> V1Pod:
    made = V1Pod.from_dict(body)
    assert made is not None
    return made


def pod(
    phase: str = "Running", state: dict[str, Any] | None = None, conditions: tuple[str, ...] = (), **status: Any
) -> V1Pod:
    container = {"name": "ome-container", "image": "img", "imageID": "id", "ready": False, "restartCount": 0}
    container.update(state=state or {}, **status)
    body = {
        "metadata": {"name": "isvc-engine-1", "labels": {"component": "engine"}},
        "spec": {
            "containers": [{"name": "sidecar"}, {"name": "ome-container", "command": ["python3"], "args": ["-x"]}]
        },
        "status": {
            "phase": phase,
            "containerStatuses": [container],
            "conditions": [{"type": c, "status": "True"} for c in conditions],
        },
    }
    return model(body)


def test_oomkilled_reads_as_an_oom_for_every_engine() -> None:
    ended = pod_status.failure(pod(state={"terminated": {"exitCode": 137, "reason": "OOMKilled"}}))
    assert ended is not None and ended[0] == 137 and "OOMKilled" in ended[1]
    for profile in (VLLM, SGLANG):
        assert profile.classify(ended[1]) is FailureKind.OOM


def test_crashloop_takes_the_last_exit_code() -> None:
    crashing = pod(
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"exitCode": 2, "reason": "Error"}},
        restartCount=4,
    )
    ended = pod_status.failure(crashing)
    assert ended is not None and ended[0] == 2 and "CrashLoopBackOff" in ended[1]
    assert pod_status.failure(pod(state={"waiting": {"reason": "CrashLoopBackOff"}})) == (
        1,
        "container ome-container is in CrashLoopBackOff",
    )


def test_a_restart_is_a_stop() -> None:
    restarted = pod(
        state={"running": {}}, lastState={"terminated": {"exitCode": 139, "reason": "Error"}}, restartCount=1
    )
    assert pod_status.failure(restarted) == (
        139,
        "container ome-container exited and was restarted: Error (exit code 139)",
    )


def test_running_starting_and_failed_pods() -> None:
    assert pod_status.failure(pod(state={"running": {}})) is None
    assert pod_status.failure(pod("Pending", {"waiting": {"reason": "ContainerCreating"}})) is None
    evicted = model({"metadata": {"name": "p"}, "status": {"phase": "Failed", "reason": "Evicted"}})
    assert pod_status.failure(evicted) == (1, "pod p failed: Evicted:")


def test_blockers() -> None:
    assert pod_status.blocker(pod("Pending", {"waiting": {"reason": "ErrImagePull"}})) is None  # retried by kubelet
    blocked = pod_status.blocker(
        pod("Pending", {"waiting": {"reason": "CreateContainerConfigError", "message": "secret x"}})
    )
    assert blocked is not None and "CreateContainerConfigError" in blocked and "secret x" in blocked


def test_serving_needs_running_ready_and_the_container_ready() -> None:
    assert not pod_status.is_serving(pod(state={"running": {}}, ready=True))  # no Ready condition yet
    assert pod_status.is_serving(pod(state={"running": {}}, ready=True, conditions=("Ready",)))
    assert not pod_status.is_serving(pod(state={"running": {}}, ready=False, conditions=("Ready",)))
    assert not pod_status.is_serving(pod("Pending", ready=True, conditions=("Ready",)))


def test_runner_argv_and_engine_pod() -> None:
    assert pod_status.argv(pod()) == ["python3", "-x"]  # the runner by name, not the first container
    deleting = model({"metadata": {"name": "old", "deletionTimestamp": "2025-01-01T00:00:00Z"}})
    router = model({"metadata": {"name": "router", "labels": {"component": "router"}}})
    chosen = pod_status.engine_pod([deleting, router, pod()])
    assert chosen is not None and pod_status.pod_name(chosen) == "isvc-engine-1"
    assert pod_status.engine_pod([deleting]) is None
