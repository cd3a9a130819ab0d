"""The docker launcher passes the launcher contract, runs real llama.cpp in a container, and reaps a killed run's.

Images cannot be pulled on the machines this runs on, so the engine image is built here, ``FROM scratch`` with
almost nothing in it (empty directories, ``/etc/passwd``, the ``/bin`` -> ``usr/bin`` links of a merged-/usr
host): the host's ``/usr``, its Python installation, its site-packages and this repository come in through
read-only bind mounts passed as ``LaunchRequest.mounts``, exactly as a user mounts a model directory. So the
container runs the very engine code under test, and nothing is copied.

Needs a Docker daemon (``.ci/docker.sh start``). Without one these tests skip, except under ``CI=true``, where a
missing daemon is a failure: CI must not go green by testing nothing.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container
from docker.types import DeviceRequest

from autotuner.catalog import BUILTIN_MODELS
from autotuner.engines.runtimes import LLAMACPP, SIM
from autotuner.launch import Deployment, InfrastructureError, LaunchRequest, Mount, wait_until_ready
from autotuner.launch.docker import (
    LABEL_NAME,
    LABEL_OWNER,
    LABEL_RUN,
    ContainerSpec,
    DockerDeployment,
    DockerLauncher,
    container_name,
    container_spec,
)
from autotuner.launch.plan import launch_request
from autotuner.space import Config
from autotuner.validation import load_spec_text

from .engine_http import chat
from .host_image import build_context, host_paths
from .launcher_contract import LauncherContract, run_owner_and_kill_it

REPO = Path(__file__).resolve().parents[2]
IMAGE = "autotuner-test-engine:local"
# One run id per test session, inherited by the owner process of the reaping test (it imports this module), so
# the finalizers below find and remove every container this session started, by label.
RUN_ID = os.environ.setdefault("AUTOTUNER_DOCKER_TEST_RUN", f"docker-test-{uuid.uuid4().hex[:8]}")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def host_mounts() -> tuple[Mount, ...]:
    """Read-only mounts that let the host's Python and this project run inside the empty image, at the same paths."""
    return tuple(Mount(source=path, target=str(path), read_only=True) for path in host_paths(REPO))


def build_engine_image(client: docker.DockerClient) -> str:
    """Build IMAGE with the Docker SDK from a two-line Dockerfile and a tarball of mount points (``host_image``)."""
    context = build_context(label='autotuner.test="engine image"')
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=IMAGE, rm=True, forcerm=True)
    return str(image.id)


def our_containers(client: docker.DockerClient) -> list[Container]:
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={RUN_ID}"}))


def remove_our_containers(client: docker.DockerClient) -> list[str]:
    removed = []
    for container in our_containers(client):
        try:
            container.remove(force=True)
            removed.append(container.name)
        except docker.errors.NotFound:
            pass
    return removed


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of a daemon that answers; FAILS under CI=true without one, skips (saying why) otherwise."""
    try:
        launcher = DockerLauncher()
    except InfrastructureError as exc:
        if in_ci():
            pytest.fail(f"CI=true but {exc}", pytrace=False)
        pytest.skip(str(exc))
    client = launcher.client
    yield client
    remove_our_containers(client)  # belt and braces; each test's own finalizer already did this


@pytest.fixture(scope="module")
def engine_image(docker_client: docker.DockerClient) -> str:
    return build_engine_image(docker_client)


@pytest.fixture
def no_leftovers(docker_client: docker.DockerClient, engine_image: str) -> Iterator[None]:
    """Whatever a test does (or fails to do), no container of this session outlives it."""
    yield
    remove_our_containers(docker_client)


class TestDockerLauncher(LauncherContract):
    @staticmethod
    def make_launcher() -> DockerLauncher:
        return DockerLauncher()

    @pytest.fixture
    def launcher(self, no_leftovers: None) -> DockerLauncher:
        return self.make_launcher()

    def request(self, tmp_path: Path, **overrides: Any) -> LaunchRequest:
        flags = {"time-scale": 0.05, **overrides.pop("flags", {})}
        env = {"PYTHONPATH": str(REPO), **overrides.pop("env", {})}
        extra = {"python": sys.executable, "pull": "never", **overrides.pop("extra", {})}
        values: dict[str, Any] = dict(
            run_id=RUN_ID,
            name="trial-0",
            profile=SIM,
            model="sim-model",
            served_name="sim-model",
            flags=flags,
            env=env,
            log_dir=tmp_path / "logs",
            image=IMAGE,
            mounts=host_mounts(),
            extra=extra,
        )
        values.update(overrides)
        return LaunchRequest(**values)

    def left_running(self, deployment: Deployment) -> list[str]:
        """Containers of this session that still exist (running or not): a stopped deployment leaves none."""
        assert isinstance(deployment, DockerDeployment)
        return [f"{c.name} ({c.status})" for c in our_containers(deployment.client)]

    # ---- docker specifics

    def test_container_settings(self, launcher: DockerLauncher, tmp_path: Path) -> None:
        request = self.request(tmp_path, env={"AUTOTUNER_TEST_MARK": "x1"})
        with launcher.start(request) as deployment:
            assert isinstance(deployment, DockerDeployment)
            attrs = launcher.client.api.inspect_container(deployment.container.id)
            host, config = attrs["HostConfig"], attrs["Config"]
            assert host["NetworkMode"] == "host" and host["IpcMode"] == "host"
            assert host["AutoRemove"] is False
            assert config["Entrypoint"] == [sys.executable]
            assert config["Cmd"][:2] == ["-m", "autotuner.engines.sim_server"]
            assert str(deployment.port) in config["Cmd"]
            assert "AUTOTUNER_TEST_MARK=x1" in config["Env"]
            assert config["Labels"][LABEL_RUN] == RUN_ID and config["Labels"][LABEL_NAME] == "trial-0"
            assert config["Labels"][LABEL_OWNER].split(":")[1] == str(os.getpid())
            assert all(m["RW"] is False for m in attrs["Mounts"])
            assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", attrs["Name"].lstrip("/"))
            wait_until_ready(deployment, request.profile, timeout=60)
        assert deployment.exit_code() == 0  # the sim exits cleanly on SIGTERM, even as PID 1

    def test_an_interrupt_while_the_container_is_created_leaves_none(
        self, launcher: DockerLauncher, tmp_path: Path
    ) -> None:
        """A real SIGINT to this process at the worst moment: the daemon has created the container, and the
        launcher does not hold it yet. It is delivered once it does, and the container is removed."""

        class InterruptedRightAfterCreate(DockerLauncher):
            def create(self, spec: ContainerSpec) -> Container:
                container = super().create(spec)
                os.kill(os.getpid(), signal.SIGINT)
                return container

        interrupted = InterruptedRightAfterCreate(launcher.client)
        with pytest.raises(KeyboardInterrupt):
            interrupted.start(self.request(tmp_path))
        assert our_containers(launcher.client) == []
        assert (tmp_path / "logs" / "trial-0.engine.log").read_text(encoding="utf-8").startswith("# docker: image ")

    def test_log_is_streamed_while_the_engine_starts(self, launcher: DockerLauncher, tmp_path: Path) -> None:
        deployment = launcher.start(self.request(tmp_path, flags={"startup-delay": 30}))
        try:
            deadline = time.monotonic() + 20
            while "listening on" not in deployment.read_log() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "listening on" in deployment.read_log(), deployment.read_log()
            assert deployment.exit_code() is None
        finally:
            deployment.stop(grace=5)
        log = deployment.read_log()
        assert log.startswith("# docker: image ") and "$ " in log and "listening on" in log
        assert self.left_running(deployment) == []

    def test_secrets_are_masked_in_kept_logs(
        self, launcher: DockerLauncher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HF_TOKEN", "hf_supersecretvalue123")
        request = self.request(tmp_path, flags={"model": "hf_supersecretvalue123"})  # echoed by the engine
        with launcher.start(request) as deployment:
            wait_until_ready(deployment, request.profile, timeout=30)
            assert "hf_supersecretvalue123" not in deployment.read_log()
        assert "hf_supersecretvalue123" not in deployment.read_log()
        assert "***" in deployment.read_log()

    def test_container_removed_behind_our_back(self, launcher: DockerLauncher, tmp_path: Path) -> None:
        """A teardown problem is recorded, never raised: it must not replace the trial's result."""
        deployment = launcher.start(self.request(tmp_path))
        assert isinstance(deployment, DockerDeployment)
        launcher.client.containers.get(deployment.container.id).remove(force=True)
        deployment.stop()
        assert deployment.exit_code() == -1
        assert "disappeared" in deployment.read_log()

    def test_missing_image_is_an_infrastructure_error(self, launcher: DockerLauncher, tmp_path: Path) -> None:
        with pytest.raises(InfrastructureError, match="autotuner-no-such-image:0 is not on this machine"):
            launcher.start(self.request(tmp_path, image="autotuner-no-such-image:0"))
        started = time.monotonic()  # the default policy pulls; here that fails (no registry) and must not hang
        with pytest.raises(InfrastructureError, match="autotuner-no-such-image:0 .*pulling it failed"):
            launcher.start(self.request(tmp_path, image="autotuner-no-such-image:0", extra={"pull": "missing"}))
        assert time.monotonic() - started < 60
        assert our_containers(launcher.client) == []

    def test_missing_interpreter_is_an_infrastructure_error(self, launcher: DockerLauncher, tmp_path: Path) -> None:
        """With Docker's init the container starts and init says it cannot exec; without it the daemon refuses."""
        request = self.request(tmp_path, extra={"python": "/nonexistent/python3"})
        with pytest.raises(InfrastructureError, match="'/nonexistent/python3' cannot be executed"):
            with launcher.start(request) as deployment:
                wait_until_ready(deployment, request.profile, timeout=30)
        assert our_containers(launcher.client) == []
        assert "exec /nonexistent/python3 failed" in (request.log_dir / "trial-0.engine.log").read_text()

        request = self.request(tmp_path, extra={"python": "/nonexistent/python3", "init": "false"})
        with pytest.raises(InfrastructureError, match="'/nonexistent/python3' does not exist in image"):
            launcher.start(request)
        assert our_containers(launcher.client) == []
        assert "container did not start" in (request.log_dir / "trial-0.engine.log").read_text()

    def test_gpu_request_is_a_device_request_on_the_daemon(self, launcher: DockerLauncher, tmp_path: Path) -> None:
        """Created, never started (no GPU here): the daemon stores a device request and no CUDA_VISIBLE_DEVICES."""
        request = self.request(tmp_path, gpus=2, env={"CUDA_VISIBLE_DEVICES": "0,1"})
        spec = container_spec(request, port=8000, owner="host:1:2.00", suffix="gpu000")
        container = launcher.create(spec)
        try:
            container.reload()
            assert container.status == "created"
            requests_ = container.attrs["HostConfig"]["DeviceRequests"]
            assert len(requests_) == 1 and requests_[0]["Count"] == 2 and requests_[0]["Capabilities"] == [["gpu"]]
            assert not any(e.startswith("CUDA_VISIBLE_DEVICES=") for e in container.attrs["Config"]["Env"])
        finally:
            container.remove(force=True)

    def test_gpus_without_a_gpu_runtime_fail_clearly(
        self, launcher: DockerLauncher, tmp_path: Path, docker_client: docker.DockerClient
    ) -> None:
        if "nvidia" in (docker_client.info().get("Runtimes") or {}):
            pytest.skip("this daemon has the NVIDIA runtime: a GPU request would start")
        request = self.request(tmp_path, gpus=2, env={"CUDA_VISIBLE_DEVICES": "0"})
        with pytest.raises(InfrastructureError, match="2 GPU"):
            launcher.start(request)
        assert our_containers(launcher.client) == []
        log = (request.log_dir / "trial-0.engine.log").read_text()
        assert "CUDA_VISIBLE_DEVICES=0 removed" in log

    def test_a_killed_runs_engine_is_reaped_by_the_next_run(
        self, no_leftovers: None, docker_client: docker.DockerClient, tmp_path: Path
    ) -> None:
        description = run_owner_and_kill_it("test_docker_launcher", "TestDockerLauncher", tmp_path)
        short_id = description.split(" container ", 1)[1].split(" ", 1)[0]
        orphan = docker_client.containers.get(short_id)
        assert orphan.status == "running", "the orphan should run before reaping"
        deadline = time.monotonic() + 20  # let it log, so the test sees that reaping keeps the log
        while b"listening on" not in orphan.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped = DockerLauncher(reap_log_dir=tmp_path / "reaped").reap()
        mine = [s for s in stopped if short_id in s]
        assert len(mine) == 1 and RUN_ID in mine[0], stopped
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(short_id)
        kept = list((tmp_path / "reaped").glob("*.engine.log"))
        assert any("listening on" in p.read_text() for p in kept)

    def test_reap_leaves_live_owners_alone(self, launcher: DockerLauncher, tmp_path: Path) -> None:
        with launcher.start(self.request(tmp_path)) as deployment:
            assert isinstance(deployment, DockerDeployment)
            stopped = DockerLauncher(reap_log_dir=tmp_path / "reaped").reap()
            assert not any(deployment.container.short_id in s for s in stopped)
            assert deployment.exit_code() is None


@pytest.mark.slow
def test_real_llamacpp_in_a_container(no_leftovers: None, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """llama.cpp (xllamacpp) serving SmolLM2, the GGUF mounted read-only at /models."""
    model = BUILTIN_MODELS["smollm2"].path()
    request = LaunchRequest(
        run_id=RUN_ID,
        name="trial-llama",
        profile=LLAMACPP,
        model=f"/models/{model.name}",
        served_name="smollm2",
        flags={"n-ctx": 2048, "threads": 2, "n-parallel": 2},
        env={"PYTHONPATH": str(REPO)},
        log_dir=tmp_path / "logs",
        image=IMAGE,
        mounts=(*host_mounts(), Mount(source=model.parent, target="/models", read_only=True)),
        extra={"python": sys.executable, "pull": "never"},
    )
    launcher = DockerLauncher()
    with launcher.start(request) as deployment:
        wait_until_ready(deployment, LLAMACPP, timeout=120)
        reply = chat(deployment.url, "smollm2", max_tokens=16)
        assert reply["usage"]["completion_tokens"] == 16 and reply["text"]
    assert isinstance(deployment, DockerDeployment)
    assert deployment.exit_code() == 0  # llamacpp_server exits cleanly on SIGTERM
    log = deployment.read_log()
    assert "llamacpp_server: ready" in log and "SIGTERM received, stopping" in log
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(deployment.container.id)


def test_a_specs_docker_block_reaches_the_daemon(
    no_leftovers: None, docker_client: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``engine.docker`` written in a spec, through ``launch.plan``, on the real daemon: the spec's own mounts make
    the empty test image runnable (the host's /usr, its Python, this repository), a hub model gets the host's
    Hugging Face cache (created here by the tool, not by the daemon as root) read-write with HF_HOME pointing at
    it, and the container has the IPC mode, /dev/shm size and init the spec asks for. The sim engine stands in
    for vLLM (no GPU image can be pulled here); the hub id is only a name to it."""
    cache = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(cache))
    mounts = "".join(f"\n      - {{source: '{path}', target: '{path}'}}" for path in host_paths(REPO))
    text = f"""\
name: docker-block
model: {{id: Qwen/Qwen2.5-0.5B-Instruct}}
engine:
  runtime: sim
  launcher: docker
  image: {IMAGE}
  python: '{sys.executable}'
  args: {{time-scale: 0.05}}
  env: {{PYTHONPATH: '{REPO}'}}
  docker:
    pull: never
    ipc: private
    shm_size: 64m
    mounts:{mounts}
parameters: {{max-num-seqs: [4, 8]}}
workload: {{scenarios: ["D(8,8)"], concurrency: [1]}}
"""
    loaded = load_spec_text(str(tmp_path / "docker-block.yaml"), text, environ={})
    request = launch_request(
        loaded, Config.of({"max-num-seqs": 4}), run_id=RUN_ID, name="trial-docker-block", log_dir=tmp_path / "logs"
    )
    assert not cache.exists()
    with DockerLauncher().start(request) as deployment:
        wait_until_ready(deployment, SIM, timeout=120)
        assert isinstance(deployment, DockerDeployment)
        deployment.container.reload()
        attrs = deployment.container.attrs
        binds = {m["Destination"]: (m["Source"], m["RW"]) for m in attrs["Mounts"]}
        assert binds["/root/.cache/huggingface"] == (str(cache), True)
        assert all(binds[str(path)] == (str(path), False) for path in host_paths(REPO))
        assert attrs["HostConfig"]["IpcMode"] == "private" and attrs["HostConfig"]["ShmSize"] == 64 * 1024**2
        assert attrs["HostConfig"]["Init"] is True
        assert "HF_HOME=/root/.cache/huggingface" in attrs["Config"]["Env"]
    assert cache.is_dir() and cache.stat().st_uid == os.getuid()


def test_a_missing_read_only_mount_is_named_before_any_container_exists(
    no_leftovers: None, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    request = TestDockerLauncher().request(
        tmp_path, mounts=(*host_mounts(), Mount(source=tmp_path / "no-such-models", target="/models"))
    )
    with pytest.raises(InfrastructureError, match=r"mount source .*no-such-models does not exist \(for /models"):
        DockerLauncher().start(request)
    assert our_containers(docker_client) == []


# ---- pure: the create-container arguments, no daemon needed


def _request(**overrides: Any) -> LaunchRequest:
    values: dict[str, Any] = dict(
        run_id="run/1",
        name="trial 3",
        profile=SIM,
        model="sim-model",
        served_name="sim-model",
        flags={"max-num-seqs": 4},
        env={},
        log_dir=Path("/tmp/logs"),
        image="engine:1",
    )
    values.update(overrides)
    return LaunchRequest(**values)


def test_gpus_render_as_a_device_request_without_cuda_visible_devices() -> None:
    request = _request(gpus=2, env={"CUDA_VISIBLE_DEVICES": "0,1", "HF_HOME": "/cache"})
    spec = container_spec(request, port=8123, owner="h:1:2.00", suffix="abc123")
    assert spec.kwargs["device_requests"] == [DeviceRequest(count=2, capabilities=[["gpu"]])]
    assert "CUDA_VISIBLE_DEVICES" not in spec.kwargs["environment"]
    assert spec.kwargs["environment"]["HF_HOME"] == "/cache"
    assert any("CUDA_VISIBLE_DEVICES=0,1 removed" in note for note in spec.notes)
    assert "CUDA_VISIBLE_DEVICES=0,1 removed" in spec.header()


def test_no_gpus_no_device_request_and_gpu_ids_when_given() -> None:
    assert "device_requests" not in container_spec(_request(), port=1, owner="o", suffix="s").kwargs
    spec = container_spec(_request(gpus=1, extra={"gpu_devices": "2, 3"}), port=1, owner="o", suffix="s")
    assert spec.kwargs["device_requests"] == [DeviceRequest(device_ids=["2", "3"], capabilities=[["gpu"]])]


def test_command_is_an_argument_list_with_the_entrypoint_overridden() -> None:
    spec = container_spec(
        _request(flags={"max-num-seqs": 4, "x": "a b; rm -rf /"}), port=9000, owner="h:1:2.00", suffix="s"
    )
    assert spec.kwargs["entrypoint"] == ["python3"]
    assert spec.kwargs["command"][:2] == ["-m", "autotuner.engines.sim_server"]
    assert spec.kwargs["command"][-2:] == ["--x", "a b; rm -rf /"]  # one token, never through a shell
    assert "--port" in spec.kwargs["command"] and "9000" in spec.kwargs["command"]
    assert spec.kwargs["network_mode"] == "host" and spec.kwargs["ipc_mode"] == "host"
    assert "shm_size" not in spec.kwargs and spec.kwargs["auto_remove"] is False
    assert spec.kwargs["labels"] == {
        "autotuner.run": "run/1",
        "autotuner.owner": "h:1:2.00",
        "autotuner.name": "trial 3",
        "autotuner.runtime": "sim",
    }


def test_python_private_ipc_and_mounts() -> None:
    request = _request(
        extra={"python": "/opt/py/bin/python", "ipc": "private"},
        mounts=(Mount(Path("/models"), "/models"), Mount(Path("/cache"), "/root/.cache", read_only=False)),
    )
    spec = container_spec(request, port=1, owner="o", suffix="s")
    assert spec.kwargs["entrypoint"] == ["/opt/py/bin/python"]
    assert spec.kwargs["ipc_mode"] == "private" and spec.kwargs["shm_size"] == "8g"
    mounts = spec.kwargs["mounts"]
    assert [(m["Source"], m["Target"], m["ReadOnly"]) for m in mounts] == [
        ("/models", "/models", True),
        ("/cache", "/root/.cache", False),
    ]


def test_container_names_are_valid_and_say_run_and_trial() -> None:
    for run_id, name in (("run/1", "trial 3"), ("-x-", "."), ("ok", "trial-0"), ("é" * 300, "t")):
        result = container_name(run_id, name, "a1b2c3")
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", result), result
        assert result.endswith("-a1b2c3") and len(result) < 128
    assert container_name("run/1", "trial 3", "a1b2c3") == "autotuner-run-1-trial-3-a1b2c3"


def test_no_image_is_an_infrastructure_error() -> None:
    with pytest.raises(InfrastructureError, match="engine.image"):
        container_spec(_request(image=None, profile=LLAMACPP), port=1, owner="o", suffix="s")


def test_no_daemon_is_an_infrastructure_error_naming_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(InfrastructureError, match=r"Docker daemon not reachable at unix:///nonexistent/docker.sock"):
        DockerLauncher()
