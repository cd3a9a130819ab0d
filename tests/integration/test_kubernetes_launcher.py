"""The kubernetes launcher against a local, faithful stand-in for a cluster with OME (``fake_kubernetes``).

The kubernetes client is the real one and speaks HTTP to the fake API server. ``TestKubernetesLauncher`` runs the
whole launcher contract with the fake kubelet running each pod's container for real: the ``sim`` engine, started
from the InferenceService's own command line, reached through the API server's service proxy, its output served
as the pod log, stopped when the InferenceService is deleted.

The tests after it script the pod's status instead, for what no local process can produce (a cgroup OOM kill, a
crash loop, an image pull failure, an unschedulable pod, OME dropping the tuned flags). Where such a test needs the
engine to really serve, the service URL points at a sim engine started with the process launcher, and the pod's
log is that engine's real log file.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from autotuner.engines.profile import FailureKind
from autotuner.engines.runtimes import SIM
from autotuner.launch import (
    Deployment,
    InfrastructureError,
    LaunchFailed,
    LaunchRequest,
    ProcessLauncher,
    pod_status,
    wait_until_ready,
)
from autotuner.launch.inferenceservice import ClusterSettings, render, resource_name, validate
from autotuner.launch.kubernetes import KubernetesDeployment, KubernetesLauncher
from autotuner.launch.ownership import Owner
from autotuner.launch.process import ProcessDeployment, free_port

from .engine_http import chat
from .fake_kubernetes import MODEL_ROOT, FakeCluster, serve, service_url
from .launcher_contract import LauncherContract, run_owner_and_kill_it

FLAGS = {"time-scale": 0.05}
# How the owner process of the reaping test (run_owner_and_kill_it) finds this test's fake API server.
KUBE_HOST = "AUTOTUNER_TEST_KUBE_HOST"
# A hub-id-like name, so the InferenceService names a runtime that loads the model itself: with a base model the
# engine gets --model $(MODEL_PATH), and the sim (which serves under its --model) would answer to the path instead.
CONTRACT_MODEL = "autotuner/sim-model"


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTUNER_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    fake = FakeCluster()
    server, thread = serve(fake)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        fake.close()  # no container process outlives the test, whatever it did


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[ProcessDeployment]:
    """The real engine behind the fake pod: sim, with the same flags the InferenceService asks for."""
    request = LaunchRequest(
        run_id="k8s-test", name="engine", profile=SIM, model="sim-model", served_name="sim-model",
        flags=FLAGS, env={}, log_dir=tmp_path / "engine",
    )  # fmt: skip
    deployment = ProcessLauncher().start(request)
    try:
        wait_until_ready(deployment, SIM, timeout=30)
        yield deployment
    finally:
        deployment.stop()


class TestKubernetesLauncher(LauncherContract):
    """The launcher contract on the fake cluster, its kubelet running the sim engine as the pod's container."""

    cluster: FakeCluster

    @staticmethod
    def make_launcher() -> KubernetesLauncher:
        return KubernetesLauncher()

    @pytest.fixture
    def launcher(self, cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> KubernetesLauncher:
        cluster.phase = "run"
        monkeypatch.setenv(KUBE_HOST, cluster.url)
        self.cluster = cluster
        return self.make_launcher()

    def request(self, tmp_path: Path, **overrides: Any) -> LaunchRequest:
        """The cluster from ``$AUTOTUNER_TEST_KUBE_HOST``, so the reaping test's owner process reaches it too."""
        api = os.environ[KUBE_HOST]
        extra = {
            "kube_host": api, "service_url": service_url(api), "runtime": "sim-runtime", "log_interval": "0.2",
            "delete_timeout": "30", "termination_grace": "10", **overrides.pop("extra", {}),
        }  # fmt: skip
        values: dict[str, Any] = dict(
            run_id="k8s-contract", name="trial-0", profile=SIM, model=CONTRACT_MODEL, served_name=CONTRACT_MODEL,
            flags={**FLAGS, **overrides.pop("flags", {})}, env={}, log_dir=tmp_path / "logs", extra=extra,
        )  # fmt: skip
        values.update(overrides)
        return LaunchRequest(**values)

    def left_running(self, deployment: Deployment) -> list[str]:
        """The InferenceService, its pods, and the real process groups the fake kubelet started for it."""
        assert isinstance(deployment, KubernetesDeployment)
        name = deployment.name
        left = [f"InferenceService {name}" for service in self.cluster.service_names() if service == name]
        left += [f"pod {pod}" for pod in self.cluster.pod_names(name)]
        left += [f"process group {c.process.pid}" for c in self.cluster.running_containers(name) if c.process]
        return left

    # ---- kubernetes specifics, with a container that really runs

    def test_the_pod_runs_what_the_inferenceservice_says(self, launcher: KubernetesLauncher, tmp_path: Path) -> None:
        """The tuned command line reaches the process, the pod spec keeps OME's 0.0.0.0:8080, the log streams."""
        request = self.request(tmp_path, flags={"startup-delay": 1})
        with launcher.start(request) as deployment:
            assert isinstance(deployment, KubernetesDeployment)
            [container] = self.cluster.running_containers(deployment.name)
            [pod] = deployment.cluster.pods(deployment.name)
            assert container.process is not None
            assert self.left_running(deployment) == [
                f"InferenceService {deployment.name}", f"pod {pod_status.pod_name(pod)}",
                f"process group {container.process.pid}",
            ]  # fmt: skip
            spec_argv = pod_status.argv(pod)
            assert spec_argv[spec_argv.index("--port") + 1] == "8080"
            assert container.argv[1:] == ["-m", SIM.module, *request.profile.server_args(
                model=CONTRACT_MODEL, served_name=CONTRACT_MODEL, host="127.0.0.1", port=container.port,
                flags=request.flags,
            )]  # fmt: skip
            deadline = time.monotonic() + 20  # while the engine starts, its output reaches the engine log
            while "listening on" not in deployment.read_log() and time.monotonic() < deadline:
                deployment.exit_code()
                time.sleep(0.1)
            assert "listening on" in deployment.read_log()
            wait_until_ready(deployment, SIM, timeout=30)
        assert self.left_running(deployment) == []
        assert container.exit_code() == 0 and "received signal 15" in container.log()  # SIGTERM, not SIGKILL

    def test_only_the_containers_env_and_secrets_reach_the_engine(
        self, launcher: KubernetesLauncher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = "hf_supersecretvalue123"
        monkeypatch.setenv("AUTOTUNER_TEST_HOST_ONLY", "x")  # the tuner's environment is not the container's
        self.cluster.secrets[("default", "hf")] = {"token": token}
        request = self.request(tmp_path, env={"PLAIN": "visible"}, extra={"hf_token_secret": "hf"})
        with launcher.start(request) as deployment:
            assert isinstance(deployment, KubernetesDeployment)
            wait_until_ready(deployment, SIM, timeout=30)
            [container] = self.cluster.running_containers(deployment.name)
            assert container.process is not None
            environ = psutil.Process(container.process.pid).environ()
        assert environ["PLAIN"] == "visible" and environ["HF_TOKEN"] == token
        assert "AUTOTUNER_TEST_HOST_ONLY" not in environ
        assert token not in (request.log_dir / "trial-0.inferenceservice.yaml").read_text()

    def test_a_missing_secret_is_an_infrastructure_error(self, launcher: KubernetesLauncher, tmp_path: Path) -> None:
        request = self.request(tmp_path, extra={"hf_token_secret": "no-such-secret"})
        with launcher.start(request) as deployment, pytest.raises(InfrastructureError) as caught:
            wait_until_ready(deployment, SIM, timeout=30)
        assert "CreateContainerConfigError" in str(caught.value) and "no-such-secret" in str(caught.value)
        assert self.left_running(deployment) == []

    def test_a_base_model_is_expanded_by_the_kubelet(self, launcher: KubernetesLauncher, tmp_path: Path) -> None:
        """OME's way: the engine reads $(MODEL_PATH), which the kubelet expands from the env OME sets."""
        request = self.request(tmp_path, model="sim-model", served_name=f"{MODEL_ROOT}/sim-model")
        with launcher.start(request) as deployment:
            assert isinstance(deployment, KubernetesDeployment)
            [pod] = deployment.cluster.pods(deployment.name)
            assert "$(MODEL_PATH)" in pod_status.argv(pod)
            wait_until_ready(deployment, SIM, timeout=30)
            reply = chat(deployment.url, f"{MODEL_ROOT}/sim-model", max_tokens=2)
            assert reply["usage"]["completion_tokens"] == 2
        assert self.left_running(deployment) == []

    def test_a_killed_runs_engine_is_reaped_by_the_next_run(self, launcher: KubernetesLauncher, tmp_path: Path) -> None:
        description = run_owner_and_kill_it("test_kubernetes_launcher", "TestKubernetesLauncher", tmp_path)
        name = description.rsplit("/", 1)[1]
        assert name == resource_name("k8s-contract", "trial-0")
        assert self.cluster.service_names() == [name], "the killed run's InferenceService should still exist"
        assert len(self.cluster.running_containers(name)) == 1, "and its engine should still run"
        stopped = KubernetesLauncher({"kube_host": self.cluster.url, "delete_timeout": "30"}).reap()
        assert len(stopped) == 1 and name in stopped[0]
        assert self.cluster.service_names() == [] and self.cluster.pod_names() == []
        assert self.cluster.running_containers() == []

    def test_reap_leaves_live_owners_alone(self, launcher: KubernetesLauncher, tmp_path: Path) -> None:
        with launcher.start(self.request(tmp_path)) as deployment:
            assert KubernetesLauncher({"kube_host": self.cluster.url}).reap() == []
            assert deployment.exit_code() is None
            assert len(self.cluster.running_containers()) == 1


# ---- scripted pod states


def kube_request(tmp_path: Path, cluster: FakeCluster, url: str, **overrides: Any) -> LaunchRequest:
    extra = {"kube_host": cluster.url, "service_url": url, "log_interval": "0.2", "delete_timeout": "10",
             **overrides.pop("extra", {})}  # fmt: skip
    values: dict[str, Any] = dict(
        run_id="k8s-test", name="trial-0", profile=SIM, model="sim-model", served_name="sim-model",
        flags=FLAGS, env={}, log_dir=tmp_path / "logs", extra=extra,
    )  # fmt: skip
    values.update(overrides)
    return LaunchRequest(**values)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_apply_ready_health_chat_delete(cluster: FakeCluster, engine: ProcessDeployment, tmp_path: Path) -> None:
    cluster.ready_after = 1.5  # health answers at once (the engine runs), the pod becomes Ready only later
    cluster.engine_log = engine.read_log
    request = kube_request(tmp_path, cluster, engine.url)
    launcher = KubernetesLauncher()
    with launcher.start(request) as deployment:
        assert isinstance(deployment, KubernetesDeployment)
        [name] = cluster.service_names()
        assert ("POST", "/apis/ome.io/v1beta1/namespaces/default/inferenceservices") in cluster.requests
        took = deployment.wait_until_serving(timeout=30)
        assert took >= 1.4, "ready before the pod was Ready: only the health endpoint was checked"
        reply = chat(deployment.url, request.served_name, max_tokens=8)
        assert reply["usage"]["completion_tokens"] == 8 and reply["text"]
        assert deployment.exit_code() is None
    assert ("DELETE", f"/apis/ome.io/v1beta1/namespaces/default/inferenceservices/{name}") in cluster.requests
    assert cluster.service_names() == [] and cluster.pod_names() == []
    log = deployment.read_log()
    assert "$ python3 -m autotuner.engines.sim_server" in log and "--time-scale 0.05" in log
    assert "INFO sim: request 0 chat" in log  # the engine's own output, read through the pod log before deletion
    manifest = yaml.safe_load((request.log_dir / "trial-0.inferenceservice.yaml").read_text())
    validate(manifest)
    assert manifest["metadata"]["annotations"]["autotuner.owner"] == Owner.current().label()
    assert deployment.exit_code() == 0  # stopped by us


def test_tuned_flags_missing_from_the_pod_fail_loudly(
    cluster: FakeCluster, engine: ProcessDeployment, tmp_path: Path
) -> None:
    cluster.drop_flags = True  # OME ran the runtime's own command line: the original tool's template bug
    request = kube_request(tmp_path, cluster, engine.url)
    with KubernetesLauncher().start(request) as deployment, pytest.raises(InfrastructureError) as caught:
        deployment.wait_until_serving(timeout=30)  # type: ignore[attr-defined]
    assert "--time-scale 0.05" in str(caught.value) and "does not run the tuned flag" in str(caught.value)
    assert deployment.read_log().count("does not run the tuned flag") == 1  # said once, however often asked
    assert cluster.service_names() == []


def test_generic_readiness_also_catches_missing_flags(
    cluster: FakeCluster, engine: ProcessDeployment, tmp_path: Path
) -> None:
    """The pipeline's wait_until_ready polls exit_code(), which checks the pod's flags before health counts."""
    cluster.drop_flags = True
    request = kube_request(tmp_path, cluster, engine.url)
    with KubernetesLauncher().start(request) as deployment, pytest.raises(InfrastructureError):
        wait_until_ready(deployment, SIM, timeout=30)


def test_oomkilled_is_an_oom(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.phase = "oomkilled"
    cluster.engine_log = lambda: "INFO loading weights\nINFO allocating KV cache\n"
    request = kube_request(tmp_path, cluster, dead_url())
    with KubernetesLauncher().start(request) as deployment, pytest.raises(LaunchFailed) as caught:
        wait_until_ready(deployment, SIM, timeout=30)
    assert caught.value.kind is FailureKind.OOM and caught.value.exit_code == 137
    assert "OOMKilled" in caught.value.log_tail and "allocating KV cache" in deployment.read_log()
    assert cluster.service_names() == []


def test_crashloop_is_classified_from_the_previous_log(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.phase = "crashloop"
    cluster.previous_log = "usage: sim_server [-h]\nsim_server: error: unrecognized arguments: --bogus 3\n"
    request = kube_request(tmp_path, cluster, dead_url())
    with KubernetesLauncher().start(request) as deployment, pytest.raises(LaunchFailed) as caught:
        wait_until_ready(deployment, SIM, timeout=30)
    assert caught.value.kind is FailureKind.INVALID_ARGUMENT and caught.value.exit_code == 1
    assert "CrashLoopBackOff" in caught.value.log_tail and "--bogus" in deployment.read_log()


def test_an_image_that_cannot_be_pulled_is_an_infrastructure_error(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.phase = "badimage"
    request = kube_request(tmp_path, cluster, dead_url(), image="registry.invalid/engine:nope")
    with KubernetesLauncher().start(request) as deployment, pytest.raises(InfrastructureError, match="ImagePull"):
        wait_until_ready(deployment, SIM, timeout=30)
    assert cluster.service_names() == []


def test_unschedulable_pod_times_out_with_the_reason_in_the_log(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.phase = "unschedulable"
    request = kube_request(tmp_path, cluster, dead_url(), gpus=8)
    with KubernetesLauncher().start(request) as deployment, pytest.raises(LaunchFailed) as caught:
        wait_until_ready(deployment, SIM, timeout=2)
    assert caught.value.kind is FailureKind.TIMEOUT
    assert "Insufficient nvidia.com/gpu" in caught.value.log_tail


def test_a_replaced_pod_is_a_stopped_engine(cluster: FakeCluster, engine: ProcessDeployment, tmp_path: Path) -> None:
    request = kube_request(tmp_path, cluster, engine.url)
    with KubernetesLauncher().start(request) as deployment:
        deployment.wait_until_serving(timeout=30)  # type: ignore[attr-defined]
        cluster.replace_pod(cluster.service_names()[0])
        deadline = time.monotonic() + 10
        while deployment.exit_code() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert deployment.exit_code() == 1
    assert "was replaced by" in deployment.read_log()


def test_stop_while_starting_and_twice(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.phase = "pending"
    deployment = KubernetesLauncher().start(kube_request(tmp_path, cluster, dead_url()))
    assert deployment.exit_code() is None
    deployment.stop()
    deployment.stop()
    assert [m for m, _ in cluster.requests].count("DELETE") == 1
    assert cluster.service_names() == [] and cluster.pod_names() == []


def test_secrets_stay_out_of_the_manifest_and_the_log(
    cluster: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "hf_supersecretvalue123"
    monkeypatch.setenv("HF_TOKEN", token)
    cluster.engine_log = lambda: f"env: HF_TOKEN={token}\n"
    request = kube_request(tmp_path, cluster, dead_url(), env={"HF_TOKEN": token, "PLAIN": "visible"})
    with KubernetesLauncher().start(request) as deployment:
        [service] = [cluster.services[key] for key in cluster.services]
        assert token not in str(service)
        assert {"name": "PLAIN", "value": "visible"} in service["spec"]["engine"]["runner"]["env"]
        time.sleep(0.3)
        deployment.exit_code()
    log = deployment.read_log()
    assert token not in log and "HF_TOKEN=***" in log and "HF_TOKEN is not passed" in log


def test_unreachable_api_is_an_infrastructure_error(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    request = LaunchRequest(
        run_id="t", name="trial-0", profile=SIM, model="sim-model", served_name="sim-model", flags={}, env={},
        log_dir=tmp_path, extra={"kube_host": closed},
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="cannot reach the Kubernetes API"):
        KubernetesLauncher().start(request)
    assert time.monotonic() - started < 20
    assert not (tmp_path / "trial-0.engine.log").exists()  # nothing was started


def test_no_cluster_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InfrastructureError, match="no Kubernetes cluster configured"):
        KubernetesLauncher().reap()


def test_ome_not_installed(cluster: FakeCluster) -> None:
    cluster.ome_installed = False
    with pytest.raises(InfrastructureError, match="is OME installed"):
        KubernetesLauncher({"kube_host": cluster.url}).check()


def other_owners_service(owner: Owner, name: str, tmp_path: Path) -> dict[str, Any]:
    request = LaunchRequest(
        run_id=f"run-{name}", name=name, profile=SIM, model="sim-model", served_name="sim-model", flags={},
        env={}, log_dir=tmp_path,
    )  # fmt: skip
    body = render(request, ClusterSettings(), owner.label()).body
    body["metadata"]["namespace"] = "default"
    return body


def test_reap_deletes_a_dead_owners_service_and_leaves_the_others(cluster: FakeCluster, tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = other_owners_service(Owner(host, os.getpid(), 1.0), "dead", tmp_path)  # this PID, another start time
    live = other_owners_service(Owner.current(), "live", tmp_path)
    remote = other_owners_service(Owner("another-host", 1, 1.0), "remote", tmp_path)  # cannot tell: leave it
    foreign = {**live, "metadata": {"name": "not-ours", "namespace": "default", "labels": {"app": "x"}}}
    for body in (dead, live, remote, foreign):
        cluster.add(body)
    stopped = KubernetesLauncher({"kube_host": cluster.url, "delete_timeout": "5"}).reap()
    assert len(stopped) == 1 and dead["metadata"]["name"] in stopped[0]
    assert cluster.service_names() == sorted(b["metadata"]["name"] for b in (live, remote, foreign))
