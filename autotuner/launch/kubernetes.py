"""The kubernetes launcher: each trial's engine as an OME InferenceService, trusted only once its pod serves.

A trial: render the InferenceService (``inferenceservice``), validate it offline, create it with the kubernetes
client, then watch the pods OME creates for it (label ``ome.io/inferenceservice=<name>``). The CR's Ready
condition is not enough evidence: the original tool's OME template once dropped the tuned flags and every trial
measured the same config. So the pod's own command line must carry every tuned flag (else InfrastructureError,
loudly), its container must not have terminated, restarted or crash-looped (else an exit code, with the reason,
e.g. OOMKilled, written into the engine log for classification), and ``wait_until_serving`` also wants the pod
Running and Ready *and* the engine's health endpoint answering.

Reaching the engine: through the service URL, by default OME's in-cluster address
``http://<name>.<namespace>.svc.cluster.local:8080`` -- the tuner runs inside the cluster (e.g. a self-hosted
runner pod). From outside, set ``service_url`` to an address that reaches it (``{name}`` and ``{namespace}`` are
filled in, e.g. an ingress host). There is no port-forward: a forward through the API server adds its own
latency and stalls to every measured request.

Logs: the engine container's log (and the previous container's, after a restart) is copied into
``<log_dir>/<name>.engine.log`` every ``log_interval`` seconds while waiting, when the engine dies, and before
the InferenceService is deleted; every copy passes through ``Masker``. Teardown deletes the InferenceService and
waits (bounded) until it and its pods are gone. ``reap`` deletes InferenceServices whose owner process is dead.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from ..engines.profile import FailureKind
from ..secrets import Masker, secret_values
from . import pod_status
from .base import Deployment, InfrastructureError, Launcher, LaunchFailed, LaunchRequest
from .inferenceservice import (
    GROUP,
    LABEL_OWNER,
    PLURAL,
    POD_LABEL,
    VERSION,
    ClusterSettings,
    Manifest,
    ManifestError,
    missing_flags,
    render,
)
from .ownership import Owner
from .readiness import Progress, failure_from_exit, wait_until_ready

API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)
TIMEOUT = (5.0, 30.0)  # connect, read: every API call is bounded
API_GRACE = 30.0  # how long the API may fail while we watch a trial before it is an infrastructure error
T = TypeVar("T")


def configuration(settings: ClusterSettings) -> client.Configuration:
    """An explicit ``kube_host``, else in-cluster config, else kubeconfig (``KUBECONFIG``, ``~/.kube/config``)."""
    cfg = client.Configuration()
    load_incluster: Callable[..., None] = config.load_incluster_config  # untyped in the client
    load_kubeconfig: Callable[..., None] = config.load_kube_config
    if settings.kube_host:
        cfg.host = settings.kube_host
        return cfg
    try:
        if settings.kube_context:
            raise ConfigException("a kubeconfig context was asked for")
        load_incluster(client_configuration=cfg)
    except ConfigException:
        try:
            load_kubeconfig(context=settings.kube_context, client_configuration=cfg, persist_config=False)
        except (ConfigException, OSError) as exc:
            raise InfrastructureError(
                f"no Kubernetes cluster configured: not running inside a cluster and no usable kubeconfig ({exc}); "
                "set KUBECONFIG, or kube_host to the API server (e.g. `kubectl proxy`'s http://127.0.0.1:8001)"
            ) from None
    return cfg


class Cluster:
    """The few API calls the launcher makes, each bounded by a timeout, in one namespace."""

    def __init__(self, settings: ClusterSettings):
        cfg = configuration(settings)
        self.host = cfg.host
        self.namespace = settings.namespace
        api = client.ApiClient(cfg)
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def check(self) -> None:
        """Reachable, allowed, and OME's InferenceService API installed; else a clear InfrastructureError."""
        try:
            self.services()
        except ApiException as exc:
            if exc.status == 404:
                raise InfrastructureError(
                    f"the Kubernetes API at {self.host} serves no {PLURAL}.{GROUP}/{VERSION}: is OME installed?"
                ) from None
            raise InfrastructureError(
                f"the Kubernetes API at {self.host} refused to list InferenceServices in namespace {self.namespace}: "
                f"{exc.status} {exc.reason} (check the credentials and RBAC)"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise InfrastructureError(f"cannot reach the Kubernetes API at {self.host}: {exc}") from None

    def create(self, body: dict[str, Any]) -> None:
        try:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            raise InfrastructureError(
                f"the Kubernetes API refused InferenceService {self.namespace}/{body['metadata']['name']}: "
                f"{exc.status} {exc.reason}: {exc.body}"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise InfrastructureError(f"cannot reach the Kubernetes API at {self.host}: {exc}") from None

    def get(self, name: str) -> dict[str, Any] | None:
        found = _unless_404(
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=TIMEOUT
            )
        )
        return found if isinstance(found, dict) else None

    def delete(self, name: str) -> bool:
        """Delete the InferenceService (OME's owner references take its Deployment and pods); False if absent."""
        done = _unless_404(
            lambda: self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=TIMEOUT
            )
        )
        return done is not None

    def services(self, selector: str | None = None) -> list[dict[str, Any]]:
        found = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, label_selector=selector, _request_timeout=TIMEOUT
        )
        return list(found.get("items") or []) if isinstance(found, dict) else []

    def pods(self, name: str) -> list[client.V1Pod]:
        found = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"{POD_LABEL}={name}", _request_timeout=TIMEOUT
        )
        return list(found.items)

    def log(self, pod: str, container: str, previous: bool = False) -> str | None:
        """The container's log as text (raw bytes: the client would parse a log that happens to be JSON)."""
        try:
            response: Any = self.core.read_namespaced_pod_log(
                pod, self.namespace, container=container, previous=previous, _preload_content=False,
                _request_timeout=TIMEOUT,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status in (400, 404):  # not started yet, or gone
                return None
            raise
        return bytes(response.data).decode("utf-8", errors="replace")

    def wait_gone(self, name: str, timeout: float) -> bool:
        """Until the InferenceService and every pod of it are gone, or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if self.get(name) is None and not self.pods(name):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def _unless_404(call: Callable[[], T]) -> T | None:
    try:
        return call()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


class KubernetesDeployment(Deployment):
    def __init__(self, request: LaunchRequest, cluster: Cluster, settings: ClusterSettings, manifest: Manifest):
        self.request = request
        self.cluster = cluster
        self.settings = settings
        self.manifest = manifest
        self.name = manifest.name
        self.url = settings.url_for(manifest.name)
        self.log_path = request.log_dir / f"{request.name}.engine.log"
        self.description = f"InferenceService {manifest.namespace}/{manifest.name}"
        self.poll = 1.0  # seconds between pod inspections from exit_code()
        self._masker = Masker.from_environ(extra=secret_values(request.env))
        self._code: int | None = None
        self._pod: client.V1Pod | None = None
        self._verified = False
        self._checked = -1e9
        self._snapshot_at = -1e9
        self._api_failing_since: float | None = None
        self._logs: dict[tuple[str, bool], str] = {}  # (pod, previous) -> last log text read
        self._events: list[str] = []  # what happened to the pod, in words, for the log
        self._stopped = False
        self._fatal: InfrastructureError | None = None  # raised again on every look: the trial cannot go on

    # -- what the trial pipeline asks -----------------------------------------------------------------------------
    def exit_code(self) -> int | None:
        """None while the pod starts or runs; the engine's exit code once it terminated, restarted, crash-loops or
        its pod was replaced (1); 0 once stopped by us.

        Raises InfrastructureError when the pod does not carry the tuned flags or can never start (bad image,
        missing Secret), or when the API stayed unreachable for ``API_GRACE`` seconds: those are not trial outcomes.
        """
        if self._code is not None or self._stopped:
            return self._code
        now = time.monotonic()
        if now - self._checked >= self.poll:
            self._checked = now
            self._inspect()
        if self._code is None and now - self._snapshot_at >= self.settings.log_interval:
            self.snapshot()
        return self._code

    def serving(self) -> bool:
        """The stronger readiness proof: a pod of ours is Running and Ready and carries the tuned flags."""
        pod = self._inspect()
        return pod is not None and self._verified and self._code is None and pod_status.is_serving(pod)

    def wait_until_serving(self, timeout: float, *, progress: Progress | None = None) -> float:
        """``wait_until_ready`` (health endpoint through the service URL), then ``serving()``; seconds it took."""
        started = time.monotonic()
        wait_until_ready(self, self.request.profile, timeout, progress=progress)
        while not self.serving():
            code = self.exit_code()
            if code is not None:
                raise failure_from_exit(self, self.request.profile, code)
            if time.monotonic() - started > timeout:
                self.snapshot()
                raise LaunchFailed(
                    FailureKind.TIMEOUT,
                    f"{self.url} answers, but no pod of {self.description} is Running and Ready after {timeout:.0f}s",
                    self.log_tail(),
                )
            time.sleep(0.5)
        return time.monotonic() - started

    def stop(self, grace: float = 15.0) -> None:
        """Keep the whole log, delete the InferenceService, wait (bounded) for its pods to go. Idempotent.

        A failed deletion is written into the log and left to the next run's ``reap``, not raised: teardown
        problems must not overwrite a trial's result.
        """
        if self._stopped:
            return
        try:
            try:
                self._inspect()
            except InfrastructureError:
                pass  # stopping is exactly what should happen next
            self._stopped = True
            self.snapshot()
            self.cluster.delete(self.name)
            if not self.cluster.wait_gone(self.name, max(self.settings.delete_timeout, grace)):
                self._events.append(f"{self.description} or its pods still exist after the deletion timeout")
        except API_ERRORS as exc:
            self._events.append(f"could not delete {self.description} ({exc}); the next run's reap deletes it")
        finally:
            self._stopped = True
            if self._code is None:
                self._code = 0  # stopped by us
            self._write()

    # -- watching the pod -----------------------------------------------------------------------------------------
    def _inspect(self) -> client.V1Pod | None:
        try:
            pods = self.cluster.pods(self.name)
        except API_ERRORS as exc:
            now = time.monotonic()
            self._api_failing_since = self._api_failing_since or now
            if now - self._api_failing_since > API_GRACE:
                raise InfrastructureError(f"lost the Kubernetes API while watching {self.description}: {exc}") from None
            return self._pod
        self._api_failing_since = None
        pod = pod_status.engine_pod(pods)
        if pod is None or self._stopped:
            return pod
        if self._pod is not None and pod_status.pod_name(pod) != pod_status.pod_name(self._pod) and self._code is None:
            # evicted, preempted or deleted, and replaced by its ReplicaSet: a different engine from here on
            self._code = 1
            self._events.append(f"pod {pod_status.pod_name(self._pod)} was replaced by {pod_status.pod_name(pod)}")
        self._pod = pod
        if self._fatal is None:
            problem = None if self._verified else self._flags_problem(pod)
            if problem is None and self._code is None:
                ended = pod_status.failure(pod)
                if ended is not None:
                    self._code, reason = ended
                    self._events.append(reason)
                    self.snapshot()
                problem = pod_status.blocker(pod) if ended is None else None
            if problem is not None:
                self._events.append(problem)
                self.snapshot()
                self._fatal = InfrastructureError(f"{self.description}: {problem} (log: {self.log_path})")
        if self._fatal is not None:
            raise self._fatal
        return pod

    def _flags_problem(self, pod: client.V1Pod) -> str | None:
        """The lesson: the pod must run the tuned flags, whatever the serving runtime or OME's webhooks did."""
        argv = pod_status.argv(pod)
        missing = missing_flags(self.manifest.tuned, argv)
        if not missing:
            self._verified = True
            return None
        return self._masker.mask(
            f"pod {pod_status.pod_name(pod)} does not run the tuned flag(s) {'; '.join(missing)} (the serving "
            f"runtime or OME dropped them); its command line is: {shlex.join(argv)}"
        )

    # -- logs -----------------------------------------------------------------------------------------------------
    def snapshot(self) -> None:
        """Copy the engine container's log(s) from the API into the log file (masked); keep the last copy on errors."""
        self._snapshot_at = time.monotonic()
        pod, container = self._pod, pod_status.runner(self._pod) if self._pod is not None else None
        if pod is not None and container is not None:
            name = pod_status.pod_name(pod)
            status = pod_status.runner_status(pod)
            wanted = [True, False] if status is not None and status.restart_count > 0 else [False]
            for previous in wanted:
                try:
                    text = self.cluster.log(name, container.name, previous)
                except API_ERRORS:
                    text = None
                if text is not None:
                    self._logs[(name, previous)] = text
        self._write()

    def _write(self) -> None:
        lines = [f"# {self.description} ({GROUP}/{VERSION}) for trial {self.request.name} of run {self.request.run_id}"]
        lines.append(f"$ {shlex.join(self.manifest.argv)}")
        lines += [f"# note: {note}" for note in self.manifest.notes]
        for (pod, previous), text in self._logs.items():
            lines.append(f"--- log of pod {pod}{' (previous container)' if previous else ''} ---")
            lines.append(text.rstrip("\n"))
        if self._pod is not None:
            lines += [f"# {line}" for line in pod_status.describe(self._pod)]
        lines += [f"# {event}" for event in self._events]
        self.log_path.write_text(self._masker.mask("\n".join(lines) + "\n"), encoding="utf-8")


class KubernetesLauncher(Launcher):
    """Launches OME InferenceServices. ``settings`` are defaults for every request's ``extra`` (and what ``reap``
    and ``check`` use: which cluster, which namespace)."""

    kind = "kubernetes"

    def __init__(self, settings: Mapping[str, str] | None = None):
        self.settings = dict(settings or {})
        self._clusters: dict[tuple[str | None, str | None, str], Cluster] = {}

    def check(self, extra: Mapping[str, str] | None = None) -> Cluster:
        """The cluster for these settings, checked once: raises InfrastructureError before any trial runs."""
        settings = self._settings(extra or {})
        key = (settings.kube_host, settings.kube_context, settings.namespace)
        if key not in self._clusters:
            cluster = Cluster(settings)
            cluster.check()
            self._clusters[key] = cluster
        return self._clusters[key]

    def start(self, request: LaunchRequest) -> KubernetesDeployment:
        settings = self._settings(request.extra)
        cluster = self.check(request.extra)
        try:
            manifest = render(request, settings, Owner.current().label())
        except ManifestError as exc:
            raise InfrastructureError(f"cannot deploy {request.name} on Kubernetes: {exc}") from None
        request.log_dir.mkdir(parents=True, exist_ok=True)
        (request.log_dir / f"{request.name}.inferenceservice.yaml").write_text(manifest.text, encoding="utf-8")
        deployment = KubernetesDeployment(request, cluster, settings, manifest)
        deployment.snapshot()  # the command line is in the log before anything runs
        cluster.create(manifest.body)
        return deployment

    def reap(self) -> list[str]:
        """Delete InferenceServices whose ``autotuner.owner`` is a dead process of this host; others stay."""
        cluster = self.check()
        stopped = []
        for item in cluster.services(LABEL_OWNER):
            metadata = item.get("metadata") or {}
            owner = Owner.parse((metadata.get("annotations") or {}).get(LABEL_OWNER, ""))
            if owner is None or owner.alive():
                continue  # not provably ours and orphaned: never touch it
            name = str(metadata.get("name"))
            if cluster.delete(name):
                cluster.wait_gone(name, self._settings({}).delete_timeout)
            run = (metadata.get("annotations") or {}).get("autotuner.run", "?")
            stopped.append(f"InferenceService {cluster.namespace}/{name} (run {run}, owner {owner.label()})")
        return stopped

    def _settings(self, extra: Mapping[str, str]) -> ClusterSettings:
        try:
            return ClusterSettings.from_extra({**self.settings, **extra})
        except ManifestError as exc:
            raise InfrastructureError(str(exc)) from None
