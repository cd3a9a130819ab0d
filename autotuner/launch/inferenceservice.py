"""The OME InferenceService that runs one trial's engine: settings, rendering, offline validation (pure, no I/O).

Kept apart from the launcher so it can be tested without a cluster, and so what we send is checked before it is
sent: a manifest that the API server would reject, or prune silently, costs a trial and hides the reason. The
original tool's OME template once stopped passing the tuned flags and nobody noticed; here the rendered runner's
argv is compared with what the profile renders, and the launcher later checks the running pod carries the flags.

Layout (from OME's ``pkg/apis/ome/v1beta1`` types and ``config/crd/full/ome.io_inferenceservices.yaml``):
``spec.model`` names a ClusterBaseModel/BaseModel (OME mounts its weights and sets ``MODEL_PATH``);
``spec.runtime`` names a ClusterServingRuntime/ServingRuntime; ``spec.engine`` holds ``minReplicas``/``maxReplicas``,
``labels``/``annotations`` (copied onto the pods) and ``runner``, a container that overrides the runtime's runner.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import jsonschema
import yaml

from ..secrets import secret_values
from .base import LaunchRequest

API_VERSION = "ome.io/v1beta1"
GROUP, VERSION, PLURAL = "ome.io", "v1beta1", "inferenceservices"
POD_LABEL = "ome.io/inferenceservice"  # OME labels every pod of an InferenceService with the service's name
RUNNER_NAME = "ome-container"  # the name OME's runtimes give the engine container (the runner override merges on it)
ENGINE_PORT = 8080  # the port OME's runtimes, probes and Services expect the engine on
MODEL_PATH = "$(MODEL_PATH)"  # set by OME to the mounted weights of spec.model; the kubelet expands $(VAR) in args
DEFAULT_SERVICE_URL = "http://{name}.{namespace}.svc.cluster.local:8080"  # OME's status.url without ingress
LABEL_RUN, LABEL_NAME, LABEL_OWNER = "autotuner.run", "autotuner.name", "autotuner.owner"
HF_TOKEN_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SETTINGS = (
    "namespace", "kube_host", "kube_context", "base_model", "base_model_kind", "runtime", "runtime_kind",
    "service_url", "hf_token_secret", "cpu", "memory", "termination_grace", "log_interval", "delete_timeout",
)  # fmt: skip
_IGNORED = ("url",)  # set by the planner for the endpoint launcher; meaningless here


class ManifestError(ValueError):
    """The settings or the rendered manifest do not make a valid InferenceService (never a trial outcome)."""


@dataclass(frozen=True)
class SecretRef:
    """A key of a Kubernetes Secret in the trial's namespace: how secrets reach the engine without the manifest."""

    secret: str
    key: str

    @classmethod
    def parse(cls, text: str, default_key: str) -> SecretRef:
        secret, _, key = text.partition(":")
        return cls(secret.strip(), key.strip() or default_key)


@dataclass(frozen=True)
class ClusterSettings:
    """What ``LaunchRequest.extra`` says about the cluster. Every key is optional; see ``from_extra``."""

    namespace: str = "default"
    kube_host: str | None = None  # an API server URL (e.g. `kubectl proxy`'s); default: in-cluster, then kubeconfig
    kube_context: str | None = None
    base_model: str | None = None
    base_model_kind: str = "ClusterBaseModel"
    runtime: str | None = None
    runtime_kind: str = "ClusterServingRuntime"
    service_url: str = DEFAULT_SERVICE_URL
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)  # engine variable -> Secret key
    cpu: str | None = None
    memory: str | None = None
    termination_grace: int = 30  # seconds the engine gets after SIGTERM when its pod is deleted
    log_interval: float = 5.0  # seconds between log snapshots while waiting
    delete_timeout: float = 120.0  # how long stop() waits for the pods to go

    @classmethod
    def from_extra(cls, extra: Mapping[str, str]) -> ClusterSettings:
        """Read ``extra``; unknown keys are refused (a misspelt ``namspace`` must not deploy into ``default``).

        ``hf_token_secret: NAME[:KEY]`` (key ``token`` by default, as OME's docs name it) feeds HF_TOKEN and
        HUGGING_FACE_HUB_TOKEN from that Secret; ``secret.VAR: NAME[:KEY]`` (key ``VAR``) does so for any variable.
        """
        unknown = [k for k in extra if k not in _SETTINGS and k not in _IGNORED and not k.startswith("secret.")]
        if unknown:
            raise ManifestError(
                f"unknown kubernetes setting(s) {', '.join(sorted(unknown))}; known: {', '.join(_SETTINGS)}, secret.VAR"
            )
        secrets: dict[str, SecretRef] = {}
        if extra.get("hf_token_secret"):
            for name in HF_TOKEN_NAMES:
                secrets[name] = SecretRef.parse(extra["hf_token_secret"], "token")
        for key, value in extra.items():
            if key.startswith("secret.") and value:
                secrets[key[7:]] = SecretRef.parse(value, key[7:])
        try:
            return cls(
                namespace=extra.get("namespace") or "default",
                kube_host=extra.get("kube_host") or None,
                kube_context=extra.get("kube_context") or None,
                base_model=extra.get("base_model") or None,
                base_model_kind=extra.get("base_model_kind") or "ClusterBaseModel",
                runtime=extra.get("runtime") or None,
                runtime_kind=extra.get("runtime_kind") or "ClusterServingRuntime",
                service_url=extra.get("service_url") or DEFAULT_SERVICE_URL,
                secrets=secrets,
                cpu=extra.get("cpu") or None,
                memory=extra.get("memory") or None,
                termination_grace=int(extra.get("termination_grace") or 30),
                log_interval=float(extra.get("log_interval") or 5.0),
                delete_timeout=float(extra.get("delete_timeout") or 120.0),
            )
        except ValueError as exc:
            raise ManifestError(f"invalid kubernetes setting: {exc}") from None

    def url_for(self, name: str) -> str:
        """The engine's base URL; ``{name}`` and ``{namespace}`` in ``service_url`` are filled in (nothing else)."""
        return self.service_url.replace("{name}", name).replace("{namespace}", self.namespace).rstrip("/")


@dataclass(frozen=True)
class Manifest:
    """A rendered, validated InferenceService and what the launcher must check the running pod against."""

    body: dict[str, Any]
    text: str
    name: str
    namespace: str
    argv: tuple[str, ...]  # runner command + args, as rendered
    tuned: tuple[tuple[str, ...], ...]  # the argv tokens of each tuned flag
    notes: tuple[str, ...]  # what was deliberately left out, for the engine log


def label_value(text: str) -> str:
    """``text`` made a valid label value (<= 63 of [A-Za-z0-9._-], alphanumeric at both ends); exact text goes in
    the annotation of the same name (an owner label ``host:pid:start`` has colons, which labels refuse)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("-._")


def resource_name(run_id: str, name: str) -> str:
    """A name OME accepts (lower case, starts with a letter, short enough for ``<name>-engine``), unique per run
    and trial thanks to a digest, and still readable: ``trial-3-run-20240601-1a2b3c``."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"{name}-{run_id}".lower()).strip("-")[:40].rstrip("-")
    if not base[:1].isalpha():
        base = f"at-{base}".rstrip("-")
    return f"{base}-{hashlib.sha256(f'{run_id}/{name}'.encode()).hexdigest()[:6]}"


def tuned_tokens(request: LaunchRequest) -> tuple[tuple[str, ...], ...]:
    groups = (tuple(request.profile.render_flag(n, v)) for n, v in request.flags.items())
    return tuple(g for g in groups if g)


def missing_flags(tuned: tuple[tuple[str, ...], ...], argv: list[str]) -> list[str]:
    """The tuned flags (each as its contiguous tokens, e.g. ``--max-num-seqs 8``) that ``argv`` does not carry."""
    missing = []
    for group in tuned:
        size = len(group)
        if not any(tuple(argv[i : i + size]) == group for i in range(len(argv) - size + 1)):
            missing.append(" ".join(group))
    return missing


def render(request: LaunchRequest, settings: ClusterSettings, owner: str) -> Manifest:
    """Render the template for ``request``, validate it offline and check it carries the tuned flags."""
    name = resource_name(request.run_id, request.name)
    model_ref, model_arg = _model(request, settings)
    env, notes = _environment(request, settings)
    command = [request.profile.container_python, "-m", request.profile.module]
    args = request.profile.server_args(
        model=model_arg, served_name=request.served_name, host="0.0.0.0", port=ENGINE_PORT, flags=request.flags
    )
    marks = ((LABEL_RUN, request.run_id), (LABEL_NAME, request.name), (LABEL_OWNER, owner))
    context = {
        "name": name,
        "namespace": settings.namespace,
        "labels": {key: label_value(text) for key, text in marks} | {"app.kubernetes.io/managed-by": "autotuner"},
        "annotations": dict(marks),
        "model": model_ref,
        "runtime": {"name": settings.runtime, "kind": settings.runtime_kind} if settings.runtime else None,
        "runner_name": RUNNER_NAME,
        "image": request.image,
        "command": command,
        "args": args,
        "env": env,
        "resources": _resources(request, settings),
        "termination_grace": settings.termination_grace,
    }
    text = _template().render(context)
    body = yaml.safe_load(text)
    validate(body)
    runner = body["spec"]["engine"]["runner"]
    if runner["command"] + runner["args"] != command + args:  # the lesson: a template that drops the tuned flags
        raise ManifestError(f"the rendered runner does not run the tuned command line: {runner}")
    return Manifest(body, text, name, settings.namespace, tuple(command + args), tuned_tokens(request), notes)


def validate(body: Any) -> None:
    """Check ``body`` against the InferenceService schema of the fields we use; all problems in one message."""
    errors = sorted(_validator().iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]
        raise ManifestError("invalid InferenceService:\n  " + "\n  ".join(lines))


def _model(request: LaunchRequest, settings: ClusterSettings) -> tuple[dict[str, str] | None, str]:
    """``spec.model`` and the engine's model argument.

    A base model (``base_model``, or ``request.model`` when it is a valid resource name) is OME's way: OME
    mounts the weights and the engine reads ``$(MODEL_PATH)``. Without one, a named runtime loads
    ``request.model`` itself (a hub id or a path inside the image; OME >= 1.3 accepts runtime-only services).
    """
    base = settings.base_model or (request.model if _DNS_LABEL.match(request.model) else None)
    if base:
        return {"name": base, "kind": settings.base_model_kind}, MODEL_PATH
    if settings.runtime:
        return None, request.model
    raise ManifestError(
        f"model {request.model!r} is not an OME model name: set base_model (a ClusterBaseModel or BaseModel) "
        "or runtime (a serving runtime that loads the model itself)"
    )


def _environment(request: LaunchRequest, settings: ClusterSettings) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Plain variables as values; secrets only as Secret references, never as text in the manifest.

    Anyone who can read InferenceServices (and their history, events, audit logs) could read an inlined token. A
    secret-valued variable (token, password, proxy URL with a password) without a configured Secret is left out
    and a note says so: a base model's weights are fetched by OME's model agent, so the engine rarely needs it.
    """
    merged = {**request.profile.env, **request.env}
    env: list[dict[str, Any]] = []
    notes: list[str] = []
    for name, value in merged.items():
        if name in settings.secrets:
            continue
        if secret_values({name: value}):
            notes.append(f"{name} is not passed to the engine: secrets are not written into manifests; "
                         f"create a Secret and set hf_token_secret or secret.{name} to NAME[:KEY]")  # fmt: skip
            continue
        env.append({"name": name, "value": value})
    for name, ref in settings.secrets.items():
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}}})
    return env, tuple(notes)


def _resources(request: LaunchRequest, settings: ClusterSettings) -> dict[str, dict[str, str]] | None:
    """GPUs as ``nvidia.com/gpu`` limits and requests (extended resources need both equal); CPU/memory if set."""
    amounts: dict[str, str] = {}
    if request.gpus > 0:
        amounts["nvidia.com/gpu"] = str(request.gpus)
    if settings.cpu:
        amounts["cpu"] = settings.cpu
    if settings.memory:
        amounts["memory"] = settings.memory
    return {"limits": amounts, "requests": dict(amounts)} if amounts else None


class _QuotedDumper(yaml.SafeDumper):
    """Every string double-quoted: escapes newlines, quotes and control characters, so a value stays one line."""


_QuotedDumper.add_representer(
    str, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
)


def to_yaml(value: Any) -> str:
    """One line of flow-style YAML for ``value`` (the template's only way to write a value)."""
    text = yaml.dump(value, Dumper=_QuotedDumper, default_flow_style=True, width=2**30, sort_keys=False)
    text = text.rstrip("\n")
    return text[: -len("\n...")] if text.endswith("\n...") else text


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("autotuner.launch", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML: values are escaped by the `yaml` filter
        keep_trailing_newline=True,
    )
    environment.filters["yaml"] = to_yaml
    return environment.get_template("inferenceservice.yaml.j2")


@cache
def _validator() -> Any:
    source = resources.files("autotuner.launch") / "templates" / "inferenceservice.schema.json"
    schema = json.loads(source.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)
