"""The endpoint launcher: benchmark a server that is already running; nothing is started or stopped.

So no launch flag can reach the server: a request that carries some (a spec's ``engine.args``) is refused, never
silently dropped, or the results would be read as those flags' and they are not.
"""

from __future__ import annotations

from ..secrets import Masker
from .base import Deployment, InfrastructureError, Launcher, LaunchRequest


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
        if request.flags:
            flags = " ".join(request.profile.render_flags(request.flags))
            raise InfrastructureError(
                Masker.from_environ().mask(
                    f"launcher endpoint starts nothing, so the launch flags {flags} cannot reach the server at "
                    f"{url}: remove them (engine.args), or use a launcher that starts the engine"
                )
            )
        return EndpointDeployment(url, request)
