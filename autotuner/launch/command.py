"""The launch command a person copies to run a config by hand: the same argv the launcher used, as text."""

from __future__ import annotations

import shlex
import sys

from ..secrets import Masker
from .base import DEFAULT_SHM_SIZE, LaunchRequest, wants_init


def command_line(request: LaunchRequest, launcher: str, *, port: int = 8000) -> str:
    """A shell-safe command for the config (secrets are never part of it: they stay in the environment).

    Tokens and proxies are left out by name; any other value that is a secret of the tool's environment (a spec
    can copy one into ``engine.env`` under any name through its template) is masked, since the command goes into
    results.json, the report and the PR comment."""
    masker = Masker.from_environ()
    return masker.mask(_command_line(request, launcher, port=port))


def _command_line(request: LaunchRequest, launcher: str, *, port: int) -> str:
    if launcher == "docker":
        python = request.extra.get("python") or request.profile.container_python
        argv = request.profile.argv(
            python, model=request.model, served_name=request.served_name, host="0.0.0.0", port=port, flags=request.flags
        )
        ipc = request.extra.get("ipc", "host")
        options = ["docker", "run", "--rm", "--network", "host", "--ipc", ipc]
        if ipc != "host":
            options += ["--shm-size", request.extra.get("shm_size", DEFAULT_SHM_SIZE)]
        if wants_init(request.extra):
            options.append("--init")
        if request.gpus:
            options += ["--gpus", str(request.gpus)]
        for mount in request.mounts:
            options += ["-v", f"{mount.source}:{mount.target}{':ro' if mount.read_only else ''}"]
        for name in sorted(request.env):
            if name.upper() in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN") or "proxy" in name.lower():
                options += ["-e", name]  # passed from the caller's environment, never written out
            else:
                options += ["-e", f"{name}={request.env[name]}"]
        image = request.image or "IMAGE"
        return shlex.join([*options, "--entrypoint", argv[0], image, *argv[1:]])
    if launcher == "kubernetes":
        return "kubectl apply -f <the trial's *.inferenceservice.yaml kept beside its engine log>"
    if launcher == "endpoint":
        return f"(endpoint {request.extra.get('url', '')}: not launched by the tool)"
    python = request.python or sys.executable
    argv = request.profile.argv(
        python, model=request.model, served_name=request.served_name, host="127.0.0.1", port=port, flags=request.flags
    )
    settings = [f"{name}={shlex.quote(value)}" for name, value in sorted({**request.profile.env}.items())]
    settings += [
        f"{name}={shlex.quote(value)}"
        for name, value in sorted(request.env.items())
        if name.upper() not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN") and "proxy" not in name.lower()
    ]
    return " ".join([*settings, shlex.join(argv)])
