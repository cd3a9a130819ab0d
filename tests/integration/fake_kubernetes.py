"""A local stand-in for a Kubernetes cluster with OME installed, speaking the real API over HTTP.

What it stands for, component by component (the real kubernetes client talks to it unchanged, so request paths,
query parameters, JSON shapes and required fields are those of the real API):

- kube-apiserver: ``inferenceservices.ome.io/v1beta1`` (create, get, list by label selector, delete) and core/v1
  pods (list by label selector, container logs), with Status objects for errors; and the API server's service proxy
  ``/api/v1/namespaces/<ns>/services/<name>[:<port>]/proxy/<path>``, the standard way to reach a Service from
  outside the cluster (``kubectl proxy``), which routes to a Ready pod of the service or answers 503 as the real
  one does ("no endpoints available"). ``service_url(cluster.url)`` is the launcher's ``service_url`` for it.
- OME's controller: on create, one engine pod labelled ``ome.io/inferenceservice=<name>, component=engine`` whose
  ``ome-container`` runs the InferenceService's runner command and args (OME's runner override) with the runner's
  env, plus ``MODEL_PATH`` when ``spec.model`` names a base model; a Service of the same name selecting that pod.
  On delete, the InferenceService goes at once and its pods by garbage collection once their containers stopped.
- the kubelet, in one of two modes chosen by ``phase`` for new pods:
  ``"run"`` runs the container for real as a local process group (``fake_kubelet``: the interpreter, network, pid
  namespace, log and termination stand-ins are described there), reports it Running and Ready while it runs and
  Terminated with its exit code when it exits, serves its real output as the pod log, and on deletion stops it
  (SIGTERM, SIGKILL after ``terminationGracePeriodSeconds``); a ``secretKeyRef`` to a Secret missing from
  ``secrets`` leaves it waiting in CreateContainerConfigError, as on a real cluster.
  Any other phase scripts the status instead, for what no local process can produce (a cgroup OOM kill, an image
  pull failure, an unschedulable pod): "ready" (after ``ready_after`` seconds), "pending", "oomkilled",
  "crashloop", "badimage", "unschedulable", or ``set_phase`` later; ``engine_log`` then supplies the container's
  log (e.g. a real engine's log file) and ``previous_log`` the previous container's.

``drop_flags`` plays OME's template bug (the runtime's own command line runs, without the tuned flags). Call
``close()`` when done: it stops every container still running and removes the containers' folders.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .fake_kubelet import CONTAINER_PORT, Container

ISVC_PREFIX = "/apis/ome.io/v1beta1/namespaces/"
POD_PREFIX = "/api/v1/namespaces/"
PROXY = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/services/(?P<service>[^/]+)/proxy(?P<path>/.*)?$")
STAMP = "2025-01-01T00:00:00Z"
MODEL_ROOT = "/mnt/models"  # where the fake OME "mounts" a base model: MODEL_PATH=/mnt/models/<name>
# Headers a proxy does not forward: those of one connection, not of the message (RFC 9110, 7.6.1), and Host,
# which names the proxy (the connection to the pod sets its own).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding",
     "upgrade", "host"}
)  # fmt: skip


def service_url(api: str) -> str:
    """The launcher's ``service_url`` that reaches an InferenceService's engine through the API server's proxy."""
    return f"{api}/api/v1/namespaces/{{namespace}}/services/{{name}}:{CONTAINER_PORT}/proxy"


@dataclass
class FakePod:
    """A pod as the API shows it: status scripted by ``phase``, or, for phase "run", read from its real container."""

    name: str
    namespace: str
    service: str
    labels: dict[str, str]
    command: list[str]
    args: list[str]
    image: str
    phase: str
    created: float = field(default_factory=time.monotonic)
    ready_after: float = 0.0
    deleted_at: float | None = None
    log: Callable[[], str] = lambda: ""
    previous_log: str | None = None
    env: list[dict[str, Any]] = field(default_factory=list)
    grace: int = 30  # terminationGracePeriodSeconds
    container: Container | None = None  # phase "run": the real process behind the container
    config_error: str | None = None  # phase "run": why the container cannot be created

    def body(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self.name, "namespace": self.namespace, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.name)),
            "creationTimestamp": STAMP, "labels": self.labels,
        }  # fmt: skip
        if self.deleted_at is not None:
            metadata["deletionTimestamp"] = STAMP
        container: dict[str, Any] = {
            "name": "ome-container", "image": self.image, "command": self.command, "args": self.args,
        }  # fmt: skip
        if self.env:
            container["env"] = self.env
        spec = {"containers": [container], "restartPolicy": "Always", "terminationGracePeriodSeconds": self.grace}
        status = self._run_status() if self.phase == "run" else self._status()
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}

    def waiting_to_start(self) -> bool:
        """The container has not been created: the log endpoint refuses, as it does for a real waiting container."""
        if self.phase == "run":
            return self.container is None
        return self.effective_phase() in ("pending", "badimage", "unschedulable")

    def read_log(self) -> str:
        return self.container.log() if self.container is not None else self.log()

    def _run_status(self) -> dict[str, Any]:
        """The status the kubelet reports for a container it really runs (see ``fake_kubelet``)."""
        scheduled = {"type": "PodScheduled", "status": "True"}
        status: dict[str, Any] = {
            "name": "ome-container", "image": self.image, "imageID": f"docker-pullable://{self.image}@sha256:0",
            "restartCount": 0,
        }  # fmt: skip
        not_ready = {"status": "False", "reason": "ContainersNotReady",
                     "message": "containers with unready status: [ome-container]"}  # fmt: skip
        if self.container is None:
            status.update(ready=False, started=False,
                          state={"waiting": {"reason": "CreateContainerConfigError", "message": self.config_error}})  # fmt: skip
            conditions = [scheduled, {"type": "Initialized", "status": "True"}]
            conditions += [{"type": t, **not_ready} for t in ("ContainersReady", "Ready")]
            return {"phase": "Pending", "conditions": conditions, "containerStatuses": [status]}
        state = self.container.state()  # once: ready and state must agree, even if the engine exits meanwhile
        ready = "running" in state  # no readiness probe in the pod: ready while it runs (see fake_kubelet)
        status.update(ready=ready, started=ready, state=state)
        if self.container.process is not None:
            status["containerID"] = f"containerd://{self.container.process.pid:064x}"
        readiness = {"status": "True"} if ready else not_ready
        conditions = [scheduled, {"type": "Initialized", "status": "True"}]
        conditions += [{"type": t, **readiness} for t in ("ContainersReady", "Ready")]
        # restartPolicy Always: a pod whose container terminated stays Running (the kubelet would restart it)
        return {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "conditions": conditions,
                "containerStatuses": [status]}  # fmt: skip

    def effective_phase(self) -> str:
        if self.phase == "ready" and time.monotonic() - self.created < self.ready_after:
            return "pending"
        return self.phase

    def _status(self) -> dict[str, Any]:
        phase = self.effective_phase()
        container: dict[str, Any] = {
            "name": "ome-container", "image": self.image, "imageID": f"docker-pullable://{self.image}@sha256:0",
            "ready": False, "restartCount": 0, "state": {},
        }  # fmt: skip
        conditions = [{"type": "PodScheduled", "status": "True"}]
        pod_phase = "Running"
        if phase == "pending":
            pod_phase = "Pending"
            container["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif phase == "unschedulable":
            pod_phase = "Pending"
            conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                           "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]  # fmt: skip
            container = {}
        elif phase == "ready":
            container.update(ready=True, started=True, state={"running": {"startedAt": STAMP}})
            conditions += [{"type": t, "status": "True"} for t in ("Initialized", "ContainersReady", "Ready")]
        elif phase == "oomkilled":
            container["state"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": STAMP}}
            conditions.append({"type": "Ready", "status": "False", "reason": "ContainersNotReady"})
        elif phase == "crashloop":
            container.update(
                restartCount=3,
                state={
                    "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
                },
                lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": STAMP}},
            )
        elif phase == "badimage":
            pod_phase = "Pending"
            container["state"] = {
                "waiting": {"reason": "ImagePullBackOff", "message": f"Back-off pulling {self.image}"}
            }
        return {
            "phase": pod_phase,
            "conditions": conditions,
            "containerStatuses": [container] if container else [],
        }


class FakeCluster:
    """The state behind the fake API server, and the knobs a test turns."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], FakePod] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.ome_installed = True
        self.phase = "ready"
        self.ready_after = 0.0
        self.drop_flags = False
        self.engine_log: Callable[[], str] = lambda: ""
        self.previous_log: str | None = None
        self.gc_delay = 0.3
        self.url = ""
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}  # (namespace, name) -> data, for secretKeyRef
        self.containers: list[Container] = []  # every container the kubelet started, running or not
        self._root: Path | None = None  # the containers' folders, made on first use
        self._stopping: list[threading.Thread] = []

    # -- test controls --------------------------------------------------------------------------------------------
    def set_phase(self, service: str, phase: str) -> None:
        with self.lock:
            for pod in self.pods.values():
                if pod.service == service:
                    pod.phase = phase

    def replace_pod(self, service: str) -> None:
        """What a ReplicaSet does after an eviction: the pod is gone and a new one (new name) takes its place."""
        with self.lock:
            for key, pod in list(self.pods.items()):
                if pod.service == service:
                    del self.pods[key]
                    pod.name = pod.name[:-5] + "zzzzz"
                    self.pods[(pod.namespace, pod.name)] = pod

    def service_names(self) -> list[str]:
        with self.lock:
            return sorted(name for _, name in self.services)

    def pod_names(self, service: str | None = None) -> list[str]:
        with self.lock:
            self._collect()
            return sorted(name for (_, name), pod in self.pods.items() if service in (None, pod.service))

    def running_containers(self, service: str | None = None) -> list[Container]:
        """Containers of ``service`` (or of any) with a process still alive on this machine."""
        with self.lock:
            return [c for c in self.containers if service in (None, c.service) and c.alive()]

    def close(self) -> None:
        """Stop every container still running (briefly politely, then SIGKILL) and remove the containers' folders."""
        for thread in self._stopping:
            thread.join(timeout=60)
        for container in self.containers:
            container.stop(grace=2.0)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    def service_endpoint(self, namespace: str, ref: str) -> int | tuple[int, str, bytes]:
        """The local port of a Ready pod behind Service ``ref`` (``name``, ``name:port`` or ``scheme:name:port``),
        or the API server's error reply: 404 without the Service, 503 without a Ready endpoint."""
        parts = ref.split(":")
        name = parts[1] if len(parts) == 3 else parts[0]
        port = parts[-1] if len(parts) > 1 else ""
        with self.lock:
            self._collect()
            if (namespace, name) not in self.services:
                return _status(404, "NotFound", f'services "{name}" not found')
            if port not in ("", CONTAINER_PORT, "http"):
                return _status(503, "ServiceUnavailable", f'no service port "{port}" found for service "{name}"')
            for pod in self.pods.values():
                container = pod.container
                if (pod.namespace, pod.service) == (namespace, name) and pod.deleted_at is None and container:
                    if container.ready():
                        return container.port
        return _status(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')

    def add(self, body: dict[str, Any]) -> None:
        """An InferenceService created by someone else (another run, another user): no pod is started for it."""
        with self.lock:
            self.services[(body["metadata"]["namespace"], body["metadata"]["name"])] = body

    # -- the API ----------------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, body: bytes) -> tuple[int, str, bytes]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append((method, target))
            self._collect()
            if parts.path.startswith(ISVC_PREFIX) and self.ome_installed:
                return self._isvc(method, parts.path[len(ISVC_PREFIX) :].split("/"), query, body)
            if parts.path.startswith(POD_PREFIX):
                return self._pods(method, parts.path[len(POD_PREFIX) :].split("/"), query)
        return _status(404, "NotFound", f"the server could not find the requested resource ({parts.path})")

    def _isvc(self, method: str, path: list[str], query: dict[str, str], raw: bytes) -> tuple[int, str, bytes]:
        if len(path) < 2 or path[1] != "inferenceservices":
            return _status(404, "NotFound", "not found")
        namespace = path[0]
        if len(path) == 2 and method == "GET":
            items = [s for (ns, _), s in self.services.items() if ns == namespace]
            items = [s for s in items if _matches(s["metadata"].get("labels") or {}, query.get("labelSelector", ""))]
            return _json(200, {"apiVersion": "ome.io/v1beta1", "kind": "InferenceServiceList",
                               "metadata": {"resourceVersion": "1"}, "items": items})  # fmt: skip
        if len(path) == 2 and method == "POST":
            service = json.loads(raw)
            name = service.get("metadata", {}).get("name")
            if not name:
                return _status(422, "Invalid", "metadata.name: Required value")
            if (namespace, name) in self.services:
                return _status(409, "AlreadyExists", f'inferenceservices.ome.io "{name}" already exists')
            service["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=STAMP)
            self.services[(namespace, name)] = service
            self._start_pod(namespace, service)
            return _json(201, service)
        if len(path) == 3 and (namespace, path[2]) in self.services:
            if method == "GET":
                return _json(200, self.services[(namespace, path[2])])
            if method == "DELETE":
                service = self.services.pop((namespace, path[2]))
                for pod in self.pods.values():
                    if pod.service == path[2] and pod.deleted_at is None:
                        pod.deleted_at = time.monotonic()
                        if pod.container is not None:  # the kubelet kills the container, outside the API's lock
                            stopping = threading.Thread(target=pod.container.stop, daemon=True)
                            stopping.start()
                            self._stopping.append(stopping)
                return _json(200, service)
        return _status(404, "NotFound", f'inferenceservices.ome.io "{path[-1]}" not found')

    def _pods(self, method: str, path: list[str], query: dict[str, str]) -> tuple[int, str, bytes]:
        if method != "GET" or len(path) < 2 or path[1] != "pods":
            return _status(405, "MethodNotAllowed", "not supported by the fake")
        namespace = path[0]
        if len(path) == 2:
            items = [p.body() for (ns, _), p in self.pods.items() if ns == namespace]
            items = [p for p in items if _matches(p["metadata"]["labels"], query.get("labelSelector", ""))]
            return _json(200, {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
                               "items": items})  # fmt: skip
        pod = self.pods.get((namespace, path[2]))
        if pod is None:
            return _status(404, "NotFound", f'pods "{path[2]}" not found')
        if len(path) == 4 and path[3] == "log":
            if query.get("previous") == "true":
                if pod.previous_log is None:
                    return _status(400, "BadRequest", "previous terminated container not found")
                return 200, "text/plain", pod.previous_log.encode()
            if pod.waiting_to_start():
                return _status(400, "BadRequest", 'container "ome-container" is waiting to start')
            return 200, "text/plain", pod.read_log().encode()
        return _json(200, pod.body())

    def _start_pod(self, namespace: str, service: dict[str, Any]) -> None:
        name = service["metadata"]["name"]
        engine = service["spec"]["engine"]
        runner = engine["runner"]
        command, args = list(runner["command"]), list(runner["args"])
        if self.drop_flags:  # the runtime's whole command line in `command`, the override lost
            command, args = [*command, "--host", "0.0.0.0", "--port", "8080"], []
        labels = {**(engine.get("labels") or {}), "ome.io/inferenceservice": name, "component": "engine"}
        env = list(runner.get("env") or [])
        model = (service["spec"].get("model") or {}).get("name")
        if model:  # OME mounts the base model's weights and says where
            env.append({"name": "MODEL_PATH", "value": f"{MODEL_ROOT}/{model}"})
        pod = FakePod(
            name=f"{name}-engine-5d8c7f9b6-x2x7q", namespace=namespace, service=name, labels=labels,
            command=command, args=args, image=runner.get("image", "runtime-image:1"), phase=self.phase,
            ready_after=self.ready_after, log=self.engine_log, previous_log=self.previous_log, env=env,
            grace=int(engine.get("terminationGracePeriodSeconds", 30)),
        )  # fmt: skip
        self.pods[(namespace, pod.name)] = pod
        if self.phase == "run":
            self._run(pod)

    def _run(self, pod: FakePod) -> None:
        """The kubelet: resolve the container's environment, then start it (or leave it waiting on a config error)."""
        values: dict[str, str] = {}
        for variable in pod.env:
            if "value" in variable:
                values[variable["name"]] = str(variable["value"])
                continue
            ref = (variable.get("valueFrom") or {}).get("secretKeyRef") or {}
            data = self.secrets.get((pod.namespace, ref.get("name", "")))
            if data is None:
                pod.config_error = f'secret "{ref.get("name")}" not found'
                return
            if ref.get("key") not in data:
                pod.config_error = f"couldn't find key {ref.get('key')} in Secret {pod.namespace}/{ref.get('name')}"
                return
            values[variable["name"]] = data[ref["key"]]
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="fake-kubelet-"))
        container = Container(
            pod=pod.name, service=pod.service, command=pod.command, args=pod.args, env=values,
            root=self._root / f"{pod.name}-{len(self.containers)}", grace=float(pod.grace),
        )  # fmt: skip
        container.start()
        pod.container = container
        self.containers.append(container)

    def _collect(self) -> None:
        now = time.monotonic()
        gone = [
            key
            for key, pod in self.pods.items()
            if pod.deleted_at is not None
            and now - pod.deleted_at >= self.gc_delay
            and (pod.container is None or not pod.container.alive())  # a pod goes once its containers stopped
        ]
        for key in gone:
            del self.pods[key]


def _matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, comma-separated."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _json(code: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return code, "application/json", json.dumps(body).encode()


def _status(code: int, reason: str, message: str) -> tuple[int, str, bytes]:
    return _json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": message, "reason": reason, "code": code})  # fmt: skip


def serve(cluster: FakeCluster) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the fake API server on a free local port; the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = urlsplit(self.path)
            proxied = PROXY.match(parts.path)
            if proxied is not None:
                target = cluster.service_endpoint(proxied["namespace"], proxied["service"])
                if isinstance(target, int):
                    path = (proxied["path"] or "/") + (f"?{parts.query}" if parts.query else "")
                    # the client gave up (a probe's timeout), or the engine died mid-response: the connection
                    # just ends, as it does through the real proxy
                    with contextlib.suppress(OSError, http.client.HTTPException):
                        self._forward(target, path, body)
                    return
                self._send(*target)
                return
            self._send(*cluster.handle(self.command, self.path, body))

        def _send(self, code: int, content_type: str, payload: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _forward(self, port: int, path: str, body: bytes) -> None:
            """The service proxy: the request to the pod, the response back as it comes (server-sent events)."""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            try:
                try:
                    upstream.request(self.command, path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                except OSError as exc:
                    self._send(*_status(503, "ServiceUnavailable", f"error trying to reach service: {exc}"))
                    return
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                length = response.getheader("Content-Length")
                if length is not None:
                    payload = response.read()
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("Connection", "close")  # a body of unknown length ends when the connection does
                self.end_headers()
                self.close_connection = True
                while chunk := response.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            finally:
                upstream.close()

        do_GET = do_POST = do_DELETE = _reply

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cluster.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread
