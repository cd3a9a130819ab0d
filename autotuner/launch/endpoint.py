"""The endpoint launcher: benchmark a server that is already running; nothing is started or stopped."""

from __future__ import annotations

from .base import Deployment, Launcher, LaunchRequest


class EndpointDeployment(Deployment):
    def __init__(self, url: str, request: LaunchRequest):
        self.url = url.rstrip("/")
        request.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = request.log_dir / f"{request.name}.engine.log"
        self.log_path.write_text(f"endpoint {self.url}: not started by the tool, so no engine log\n")
        self.description = f"endpoint {self.url}"

    def exit_code(self) -> int | None:
        return None  # we cannot see it exit; readiness and the benchmark see it fail instead

    def stop(self, grace: float = 15.0) -> None:
        return None  # not ours to stop


class EndpointLauncher(Launcher):
    kind = "endpoint"

    def start(self, request: LaunchRequest) -> EndpointDeployment:
        url = request.extra.get("url")
        if not url:
            raise ValueError("the endpoint launcher needs engine.url")
        return EndpointDeployment(url, request)
