"""The docker launcher: an engine in a container, on the host's network and IPC, stopped and removed by its handle.

Why it looks the way it does (each point is a failure the original system had, see ``lessons.md``):

- Host network and host IPC, a free host port: with bridge networking SGLang's internal services never started
  (503 for 600+ s); engines share tensors through ``/dev/shm``.
- The command is an argument list with the image's entrypoint overridden (``entrypoint=[argv[0]]``,
  ``command=argv[1:]``): no shell ever parses spec values, and an image's own entrypoint script cannot reorder
  or drop flags.
- GPUs only as Docker device requests, never together with ``CUDA_VISIBLE_DEVICES`` (that combination gave
  "No accelerator available"): the variable is dropped from the engine's environment, and the log says so.
- The container is never auto-removed: logs vanished that way. Its output is streamed into
  ``<log_dir>/<name>.engine.log`` while it starts (readiness classifies a crash from it), and on exit or stop the
  *whole* log is written again from ``container.logs()``, secrets masked, *before* the container is removed.
- A teardown error never replaces a trial's result ("a cleanup timeout marked a finished experiment failed"): it
  is written into the engine log and kept in ``DockerDeployment.teardown_errors``, and ``stop()`` does not raise.
- Every container carries labels (``autotuner.run``, ``autotuner.owner`` = host:pid:start-time of the tuner,
  ``autotuner.name``), so a later run reaps exactly what a killed run left behind, never anything by name.
- No reachable daemon, a missing image or an engine that cannot be executed are ``InfrastructureError`` (the
  same for every config, so not a trial outcome), raised before or at the first start.

Launcher-specific settings come from ``LaunchRequest.extra`` (a spec sets them in ``engine.docker``, see
``launch.plan``):

- ``python``: the interpreter inside the image (default: the profile's ``container_python``).
- ``pull``: ``missing`` (default: pull only an image that is not on the machine), ``never`` or ``always``.
- ``ipc``: Docker IPC mode (default ``host``); ``shm_size`` (default ``8g``) applies only to a private IPC mode,
  since with host IPC the engine uses the host's ``/dev/shm``.
- ``gpu_devices``: comma-separated GPU ids to request instead of a count (one GPU per pytest-xdist worker).
- ``init``: ``true`` (default) runs Docker's init as PID 1 so signals reach the engine; ``false`` for a daemon
  without one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import DeviceRequest
from docker.types import Mount as DockerMount

from ..atomic import held_signals
from ..secrets import Masker
from .base import DEFAULT_SHM_SIZE, Deployment, InfrastructureError, Launcher, LaunchRequest, Mount, wants_init
from .ownership import Owner, state_dir
from .process import free_port

LOG = logging.getLogger(__name__)

LABEL_RUN = "autotuner.run"
LABEL_OWNER = "autotuner.owner"
LABEL_NAME = "autotuner.name"
LABEL_RUNTIME = "autotuner.runtime"
GPU_VARIABLE = "CUDA_VISIBLE_DEVICES"
PULL_POLICIES = ("missing", "never", "always")

# Errors the SDK raises when the daemon answers badly or not at all (requests' errors are OSErrors too).
_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
# What Docker's init (tini) prints when the engine's command cannot be executed.
_INIT_EXEC_FAILED = re.compile(r"\[FATAL tini \(\d+\)\] exec (\S+) failed: ([^\n]*)")


def daemon_address() -> str:
    """Where the SDK looks for the daemon (what ``docker.from_env`` uses), for error messages."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def container_name(run_id: str, name: str, suffix: str) -> str:
    """A valid Docker name (``[a-zA-Z0-9][a-zA-Z0-9_.-]*``) that says which run and trial the container is.

    The random ``suffix`` keeps a resumed run (same run id, same trial names) from colliding with a container
    that a killed run left behind and that is not reaped yet.
    """
    stem = _NAME_UNSAFE.sub("-", f"{run_id}-{name}").strip("-.") or "engine"
    return f"autotuner-{stem[:100]}-{suffix}"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything ``containers.create`` gets for one request: computed without a daemon, so it is unit-tested."""

    image: str
    name: str
    argv: list[str]
    port: int
    kwargs: dict[str, Any]  # keyword arguments of ``DockerClient.containers.create`` (image included)
    notes: tuple[str, ...] = ()  # decisions the engine log should explain (e.g. a dropped CUDA_VISIBLE_DEVICES)

    def header(self) -> str:
        """The first lines of the engine log: what ran, where, and why anything was changed."""
        lines = [f"# docker: image {self.image}, container {self.name}", f"$ {' '.join(self.argv)}"]
        return "\n".join([*lines, *(f"# {note}" for note in self.notes)]) + "\n"


def image_for(request: LaunchRequest) -> str:
    image = request.image or request.profile.default_image
    if not image:
        raise InfrastructureError(
            f"no container image for runtime {request.profile.runtime!r}: set engine.image in the spec "
            "(its profile has no default image)"
        )
    return image


def container_spec(request: LaunchRequest, *, port: int, owner: str, suffix: str) -> ContainerSpec:
    """The create-container arguments for ``request``: pure, so GPU and mount rendering are testable anywhere."""
    image = image_for(request)
    python = request.extra.get("python") or request.profile.container_python
    argv = request.profile.argv(
        python,
        model=request.model,
        served_name=request.served_name,
        host=request.host,
        port=port,
        flags=request.flags,
    )
    notes: list[str] = []
    # Python engines block-buffer a piped stdout: unbuffered, their startup lines reach the log while they start.
    environment = {"PYTHONUNBUFFERED": "1", **request.profile.env, **request.env}
    if GPU_VARIABLE in environment:
        dropped = environment.pop(GPU_VARIABLE)
        notes.append(
            f"{GPU_VARIABLE}={dropped} removed from the engine environment: GPUs are given to containers only as "
            "device requests (both together leave the engine with no accelerator)"
        )
    name = container_name(request.run_id, request.name, suffix)
    kwargs: dict[str, Any] = {
        "image": image,
        "name": name,
        "entrypoint": [argv[0]],
        "command": argv[1:],
        "environment": environment,
        "labels": {
            LABEL_RUN: request.run_id,
            LABEL_OWNER: owner,
            LABEL_NAME: request.name,
            LABEL_RUNTIME: request.profile.runtime,
        },
        "network_mode": "host",
        # An init process as PID 1 (Docker's tini) forwards SIGTERM and reaps workers' zombies. Without it the
        # engine is PID 1, and the kernel ignores a SIGTERM it has no handler for yet (still importing): every
        # stop during startup would wait the whole grace period and end in SIGKILL.
        "init": wants_init(request.extra),
        "auto_remove": False,
        "detach": True,
        "stdin_open": False,
        "tty": False,
        "mounts": [
            DockerMount(target=m.target, source=str(Path(m.source).absolute()), type="bind", read_only=m.read_only)
            for m in request.mounts
        ],
    }
    ipc = request.extra.get("ipc", "host")
    kwargs["ipc_mode"] = ipc
    if ipc != "host":
        kwargs["shm_size"] = request.extra.get("shm_size", DEFAULT_SHM_SIZE)
    devices = [d.strip() for d in request.extra.get("gpu_devices", "").split(",") if d.strip()]
    if devices:
        kwargs["device_requests"] = [DeviceRequest(device_ids=devices, capabilities=[["gpu"]])]
    elif request.gpus > 0:
        kwargs["device_requests"] = [DeviceRequest(count=request.gpus, capabilities=[["gpu"]])]
    return ContainerSpec(image=image, name=name, argv=argv, port=port, kwargs=kwargs, notes=tuple(notes))


def prepare_mounts(mounts: Sequence[Mount]) -> None:
    """Host sides of the bind mounts, before the container is created: a writable one that does not exist yet (a
    first run's Hugging Face cache) is created here, by the user running the tool, where the daemon would create
    it owned by root; a read-only one that does not exist is a mistake in the spec, named before any engine starts
    (the daemon's "bind source path does not exist" names neither the spec nor the field)."""
    for mount in mounts:
        source = Path(mount.source).absolute()
        if source.exists():
            continue
        if mount.read_only:
            raise InfrastructureError(
                f"mount source {source} does not exist (for {mount.target} in the container; see engine.docker)"
            )
        try:
            source.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfrastructureError(f"cannot create {source} to mount at {mount.target}: {exc}") from None


class _LogFollower(threading.Thread):
    """Appends the container's output to its log file as it comes, whole lines at a time, masked.

    Whole lines so that a secret is never split across two writes (and so unmasked). The stream ends by itself
    when the container exits; ``close()`` cuts it short and guarantees no write happens after it returns.
    """

    def __init__(self, container: Container, path: Path, masker: Masker, lock: threading.Lock):
        super().__init__(name=f"docker-logs-{container.short_id}", daemon=True)
        self._container = container
        self._path = path
        self._masker = masker
        self._lock = lock
        self._stream: Any = None
        self._closed = False

    def run(self) -> None:
        try:
            stream = self._container.logs(stream=True, follow=True, stdout=True, stderr=True)
            self._stream = stream
            if self._closed:
                return
            pending = b""
            for chunk in stream:
                head, newline, pending = (pending + chunk).rpartition(b"\n")
                if newline:
                    self._write(head + newline)
            if pending:
                self._write(pending + b"\n")
        except _DOCKER_ERRORS as exc:
            self._write(f"# autotuner: log stream interrupted: {exc}\n".encode())

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            text = self._masker.mask(data.decode("utf-8", errors="replace"))
            with open(self._path, "a", encoding="utf-8") as log:
                log.write(text)

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
        if self._stream is not None:
            with contextlib.suppress(*_DOCKER_ERRORS, AttributeError):
                self._stream.close()
        if self.is_alive():
            self.join(timeout)


@dataclass
class _Outcome:
    """What is known about the container once it stopped (it may be removed after that)."""

    exit_code: int | None = None
    notes: list[str] = field(default_factory=list)


class DockerDeployment(Deployment):
    """A started container; ``stop()`` captures its whole log, then removes it. ``exit_code()`` asks the daemon."""

    def __init__(self, request: LaunchRequest, client: docker.DockerClient, container: Container, spec: ContainerSpec):
        self.request = request
        self.client = client
        self.container = container
        self.spec = spec
        self.port = spec.port
        self.url = f"http://{request.host}:{spec.port}"
        self.log_path = request.log_dir / f"{request.name}.engine.log"
        self.description = f"{request.profile.runtime} container {container.short_id} ({spec.name})"
        self.teardown_errors: list[str] = []
        self._masker = Masker.from_environ({**os.environ, **request.env})
        self._lock = threading.Lock()
        self._outcome: _Outcome | None = None
        self._stopped = False
        self._follower = _LogFollower(container, self.log_path, self._masker, self._lock)

    def _follow(self) -> None:
        self._follower.start()

    def exit_code(self) -> int | None:
        """None while the container runs; its exit code once it exited (-1: it vanished from the daemon).

        The first time it sees the container exited, the whole log is rewritten from the daemon's copy, so readiness
        classifies the failure from every line. Raises ``InfrastructureError`` when the daemon stops answering, or
        when the engine's command could not be executed at all (no config would do better).
        """
        if self._outcome is not None:
            return self._outcome.exit_code
        try:
            self.container.reload()
        except docker.errors.NotFound:
            self._finish(_Outcome(-1, ["the container disappeared (removed outside autotuner)"]), capture=False)
            return -1
        except _DOCKER_ERRORS as exc:
            raise InfrastructureError(f"Docker daemon not answering about {self.description}: {exc}") from exc
        state = self.container.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            self._finish(_outcome_from(state))
            self._raise_if_not_executable()
            assert self._outcome is not None
            return self._outcome.exit_code
        return None

    def _raise_if_not_executable(self) -> None:
        """The engine's command could not even be executed: the same for every config, so infrastructure.

        Without an init process the daemon refuses to start such a container (``start`` raises); with Docker's
        init (tini) the container starts and tini exits 126/127 saying so. Both end as ``InfrastructureError``.
        """
        if self._outcome is None or self._outcome.exit_code not in (126, 127):
            return
        found = _INIT_EXEC_FAILED.search(self.read_log())
        if found:
            raise InfrastructureError(
                f"cannot start a {self.request.profile.runtime} container from {self.spec.image}: {found[1]!r} "
                f"cannot be executed in the image or its mounts ({found[2].strip()}): set engine.python / "
                "extra 'python' to the interpreter inside the image"
            )

    def _finish(self, outcome: _Outcome, capture: bool = True) -> None:
        """Record how the container ended and rewrite its log from the daemon's complete copy."""
        self._outcome = outcome
        self._follower.close()
        if capture:
            try:
                raw = self.container.logs(stdout=True, stderr=True)
            except _DOCKER_ERRORS as exc:
                outcome.notes.append(f"could not read the whole container log ({exc}); kept what was streamed")
            else:
                text = raw.decode("utf-8", errors="replace")
                self._write_log(self.spec.header() + text + ("" if not text or text.endswith("\n") else "\n"))
        self._append_notes(outcome.notes)

    def _write_log(self, text: str) -> None:
        with self._lock:
            temporary = self.log_path.with_suffix(".tmp")
            temporary.write_text(self._masker.mask(text), encoding="utf-8")
            temporary.replace(self.log_path)

    def _append_notes(self, notes: list[str]) -> None:
        if not notes:
            return
        with self._lock, contextlib.suppress(OSError), open(self.log_path, "a", encoding="utf-8") as log:
            log.write("".join(f"# autotuner: {self._masker.mask(note)}\n" for note in notes))

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` s (Docker's stop); whole log kept; container removed. Never raises."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._teardown(grace)
        except Exception as exc:  # noqa: BLE001 - teardown must not replace the trial's result; it is recorded
            self._teardown_error("teardown", exc)

    def _teardown(self, grace: float) -> None:
        try:
            if self._outcome is None:
                self._stop_and_capture(grace)
        finally:  # whatever failed above (even an interrupt), the container does not outlive its deployment
            try:
                self.container.remove(force=True)  # force: if stopping failed, removal kills it
            except docker.errors.NotFound:
                pass
            except _DOCKER_ERRORS as exc:
                self._teardown_error("remove", exc)

    def _stop_and_capture(self, grace: float) -> None:
        try:
            self.container.stop(timeout=max(0, math.ceil(grace)))
        except docker.errors.NotFound:
            pass
        except _DOCKER_ERRORS as exc:
            self._teardown_error("stop", exc)
        try:
            self.container.reload()
            outcome = _outcome_from(self.container.attrs.get("State", {}))
        except docker.errors.NotFound:
            self._finish(_Outcome(-1, ["the container disappeared (removed outside autotuner)"]), capture=False)
            return
        except _DOCKER_ERRORS as exc:
            outcome = _Outcome(None, [f"could not read the container's final state: {exc}"])
        self._finish(outcome)

    def _teardown_error(self, step: str, exc: BaseException) -> None:
        message = f"{step} of {self.description} failed: {exc}"
        self.teardown_errors.append(message)
        LOG.warning("%s", message)
        self._append_notes([f"teardown error: {message}"])


def _outcome_from(state: Mapping[str, Any]) -> _Outcome:
    notes = []
    if state.get("OOMKilled"):
        # The kernel's OOM killer leaves no line in the engine's log; this one lets readiness classify it.
        notes.append("the container was killed: out of memory (Docker State.OOMKilled)")
    if state.get("Error"):
        notes.append(f"Docker reported: {state['Error']}")
    status = state.get("Status")
    code = int(state.get("ExitCode", -1)) if status in ("exited", "dead") else None
    return _Outcome(code, notes)


class DockerLauncher(Launcher):
    """Starts engines as containers through the Docker SDK; fails at construction when no daemon answers."""

    kind = "docker"

    def __init__(self, client: docker.DockerClient | None = None, *, reap_log_dir: Path | None = None):
        self.reap_log_dir = reap_log_dir
        if client is None:
            try:
                client = docker.from_env()
            except _DOCKER_ERRORS as exc:
                raise self._unreachable(exc) from None
        try:
            client.ping()
        except _DOCKER_ERRORS as exc:
            raise self._unreachable(exc) from None
        self.client = client

    @staticmethod
    def _unreachable(exc: BaseException) -> InfrastructureError:
        return InfrastructureError(
            f"Docker daemon not reachable at {daemon_address()}: start dockerd (`sudo systemctl start docker`, "
            f"or `.ci/docker.sh start` in this repository) or point DOCKER_HOST at a running daemon ({exc})"
        )

    def start(self, request: LaunchRequest) -> DockerDeployment:
        spec = container_spec(
            request,
            port=request.port or free_port(request.host),
            owner=Owner.current().label(),
            suffix=secrets.token_hex(3),
        )
        self.ensure_image(spec.image, request.extra.get("pull", "missing"))
        prepare_mounts(request.mounts)
        try:
            request.log_dir.mkdir(parents=True, exist_ok=True)
            header = Masker.from_environ({**os.environ, **request.env}).mask(spec.header())
            (request.log_dir / f"{request.name}.engine.log").write_text(header, encoding="utf-8")
        except OSError as exc:
            raise InfrastructureError(f"cannot write engine logs into {request.log_dir}: {exc}") from None
        # Ctrl-C and SIGTERM wait while the container is created and wrapped: one landing after the daemon created
        # it but before the deployment existed left a container nobody removed (as the process launcher's Popen
        # did). Delivered once the deployment exists, the interrupt removes it below, like any failure up to return.
        deployment: DockerDeployment | None = None
        try:
            with held_signals():
                container = self.create(spec)
                deployment = DockerDeployment(request, self.client, container, spec)
            try:
                container.start()
            except _DOCKER_ERRORS as exc:
                deployment.stop(grace=0)  # keeps the (empty) log and removes the container
                deployment._append_notes([f"container did not start: {exc}"])
                raise InfrastructureError(_start_failure(request, spec, exc)) from None
            deployment._follow()
        except InfrastructureError:
            raise
        except BaseException:  # interrupted while the container was created or started: nothing may stay behind
            if deployment is not None:
                deployment.stop(grace=0)
            raise
        return deployment

    def create(self, spec: ContainerSpec) -> Container:
        """Create (not start) the container; separate so its settings can be inspected on a machine without GPUs."""
        try:
            return cast(Container, self.client.containers.create(**spec.kwargs))
        except docker.errors.ImageNotFound:
            raise InfrastructureError(f"image {spec.image} is not on this machine: build or load it first") from None
        except _DOCKER_ERRORS as exc:
            if isinstance(exc, requests.exceptions.ConnectionError):
                raise self._unreachable(exc) from None
            raise InfrastructureError(f"cannot create a container from {spec.image}: {exc}") from None

    def ensure_image(self, image: str, pull: str = "missing") -> None:
        """Make sure ``image`` is local, pulling it per the policy; a failed pull names the image, never hangs here."""
        if pull not in PULL_POLICIES:
            raise InfrastructureError(f"unknown pull policy {pull!r} (choose from {', '.join(PULL_POLICIES)})")
        if pull != "always":
            try:
                self.client.images.get(image)
                return
            except docker.errors.ImageNotFound:
                if pull == "never":
                    raise InfrastructureError(
                        f"image {image} is not on this machine and pulling is off (pull: never): build or load it"
                    ) from None
            except _DOCKER_ERRORS as exc:
                if isinstance(exc, requests.exceptions.ConnectionError):
                    raise self._unreachable(exc) from None
                raise InfrastructureError(f"cannot look up image {image}: {exc}") from None
        try:
            self.client.images.pull(image)
        except _DOCKER_ERRORS as exc:
            raise InfrastructureError(
                f"image {image} is not on this machine and pulling it failed: {exc} "
                "(check the name and tag, registry access and credentials, or build/load it locally)"
            ) from None

    def containers(self) -> Iterator[Container]:
        """Every container (running or not) that some run of the tool started on this daemon."""
        yield from self.client.containers.list(all=True, filters={"label": LABEL_OWNER})

    def reap(self) -> list[str]:
        """Stop and remove containers whose owner process is gone, keeping their logs under the state folder."""
        log_dir = self.reap_log_dir or state_dir() / "reaped"
        stopped: list[str] = []
        for container in self.containers():
            labels: dict[str, str] = container.labels
            owner = Owner.parse(labels.get(LABEL_OWNER, ""))
            if owner is not None and owner.alive():
                continue
            description = (
                f"container {container.short_id} ({container.name}, run {labels.get(LABEL_RUN, '?')}, "
                f"trial {labels.get(LABEL_NAME, '?')})"
            )
            try:
                log_path = _reap_one(container, log_dir)
            except _DOCKER_ERRORS as exc:
                LOG.warning("could not reap %s: %s", description, exc)
                continue
            stopped.append(f"{description}; log kept in {log_path}")
        return stopped


def _reap_one(container: Container, log_dir: Path, grace: float = 10.0) -> Path:
    """Stop an orphaned container, keep its whole log (masked), then remove it."""
    with contextlib.suppress(docker.errors.NotFound):
        container.stop(timeout=math.ceil(grace))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{container.name}.engine.log"
    with contextlib.suppress(docker.errors.NotFound):
        raw = container.logs(stdout=True, stderr=True)
        log_path.write_text(Masker.from_environ().mask(raw.decode("utf-8", errors="replace")), encoding="utf-8")
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)
    return log_path


def _start_failure(request: LaunchRequest, spec: ContainerSpec, exc: BaseException) -> str:
    """Why a created container would not start, with the likely fix: this fails every config alike."""
    text = str(exc)
    if "device driver" in text or "nvidia" in text.lower():
        hint = (
            f"{request.gpus} GPU(s) requested but the daemon has no GPU runtime (install the NVIDIA Container Toolkit)"
        )
    elif "docker-init" in text:
        hint = (
            "Docker's init (/sbin/docker-init, bind-mounted by the daemon) cannot run in this image "
            "(/sbin must be a real folder; or set extra 'init' to false)"
        )
    elif spec.argv[0] in text or "executable file not found" in text:
        hint = (
            f"{spec.argv[0]!r} does not exist in image {spec.image} or its mounts "
            "(set engine.python / extra 'python' to the interpreter inside the image)"
        )
    else:
        hint = "see the engine log"
    return f"cannot start a {request.profile.runtime} container from {spec.image}: {hint} ({text})"
