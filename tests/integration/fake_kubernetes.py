"""A local stand-in for a Kubernetes cluster with OME installed, speaking the real API over HTTP.

What it stands for: kube-apiserver serving ``inferenceservices.ome.io/v1beta1`` (create, get, list by label
selector, delete) and core/v1 pods (list by label selector, container logs), with Status objects for errors; plus
what OME's controller and the kubelet do in between: on create, one engine pod labelled
``ome.io/inferenceservice=<name>, component=engine`` whose ``ome-container`` runs the InferenceService's runner
command and args (OME's runner override); on delete, the InferenceService goes at once and its pods shortly after
(garbage collection). The real kubernetes client talks to it unchanged, so request paths, query parameters, JSON
shapes and required fields are those of the real API.

The test drives the pod: ``phase`` for new pods ("ready" after ``ready_after`` seconds, "pending", "oomkilled",
"crashloop") or ``set_phase`` later; ``drop_flags`` plays OME's template bug (the runtime's own command line runs,
without the tuned flags); ``engine_log`` supplies the container's log (e.g. a real engine's log file).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ISVC_PREFIX = "/apis/ome.io/v1beta1/namespaces/"
POD_PREFIX = "/api/v1/namespaces/"
STAMP = "2025-01-01T00:00:00Z"


@dataclass
class FakePod:
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

    def body(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self.name, "namespace": self.namespace, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.name)),
            "creationTimestamp": STAMP, "labels": self.labels,
        }  # fmt: skip
        if self.deleted_at is not None:
            metadata["deletionTimestamp"] = STAMP
        container = {"name": "ome-container", "image": self.image, "command": self.command, "args": self.args}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"containers": [container], "restartPolicy": "Always"},
            "status": self._status(),
        }

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

    def pod_names(self) -> list[str]:
        with self.lock:
            self._collect()
            return sorted(name for _, name in self.pods)

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
            if pod.effective_phase() in ("pending", "badimage", "unschedulable"):
                return _status(400, "BadRequest", 'container "ome-container" is waiting to start')
            return 200, "text/plain", pod.log().encode()
        return _json(200, pod.body())

    def _start_pod(self, namespace: str, service: dict[str, Any]) -> None:
        name = service["metadata"]["name"]
        engine = service["spec"]["engine"]
        runner = engine["runner"]
        command, args = list(runner["command"]), list(runner["args"])
        if self.drop_flags:  # the runtime's whole command line in `command`, the override lost
            command, args = [*command, "--host", "0.0.0.0", "--port", "8080"], []
        labels = {**(engine.get("labels") or {}), "ome.io/inferenceservice": name, "component": "engine"}
        pod = FakePod(
            name=f"{name}-engine-5d8c7f9b6-x2x7q", namespace=namespace, service=name, labels=labels,
            command=command, args=args, image=runner.get("image", "runtime-image:1"), phase=self.phase,
            ready_after=self.ready_after, log=self.engine_log, previous_log=self.previous_log,
        )  # fmt: skip
        self.pods[(namespace, pod.name)] = pod

    def _collect(self) -> None:
        now = time.monotonic()
        gone = [k for k, p in self.pods.items() if p.deleted_at is not None and now - p.deleted_at >= self.gc_delay]
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
            code, content_type, payload = cluster.handle(self.command, self.path, self.rfile.read(length))
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _reply

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cluster.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread
