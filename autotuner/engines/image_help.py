"""The flag vocabulary of the engine inside a container image: its server's ``--help``, run in the image.

Why: a spec that runs SGLang or vLLM through the docker launcher is meant for the engine release in its image, and
often no local interpreter has that engine at all (it needs a GPU build). The image itself can still say which
flags it takes: ``python3 -m sglang.launch_server --help`` runs fine without a GPU, a model or a network. So,
during validation, the image's own server is run with ``--help`` and its argparse text is parsed
(:mod:`.help_text`).

How it is run, and why:

- Only an image already in the local daemon: validation never pulls (a pull can take many minutes and GBs, and
  is the launcher's business with its own policy). An absent image is "not checked", saying so.
- The image's entrypoint is overridden with the interpreter the launcher would use (``engine.python``, else the
  profile's ``container_python``), as the docker launcher does, so an entrypoint script cannot get in the way.
- ``network_mode: none``: printing a help needs no network, and the container cannot reach anything.
- Removed afterwards (also on a timeout or an interrupt), and labelled with this process as owner like the
  launcher's containers, so ``autotuner reap`` removes one that a killed validation left behind.
- ``COLUMNS`` is fixed so argparse lays the text out the same way whatever the terminal (the fixtures of the
  unit tests were printed with the same width); colours are off.
- vLLM >= 0.10 prints only its option groups for ``--help``; ``--help=all`` prints every option. Older releases
  refuse ``--help=all``, so ``--help`` is tried next.

The parsed help is cached per (image id, interpreter, runtime) for the life of the process: an image id names
its content, so a re-tagged image is read again and the same image under two tags is read once. Failures are
cached too (the same image fails the same way), except for an absent image, which a ``docker pull`` may fix.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions

from .help_text import EngineHelp, HelpTextError, parse_help
from .runtimes import profile_for

HELP_ARGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sglang": (("--help",),),
    "vllm": (("--help=all",), ("--help",)),
}
HELP_COLUMNS = 200
HELP_TIMEOUT = 300.0  # importing a GPU engine (torch, CUDA libraries) on a small machine can take a minute or two
_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


class HelpUnavailable(Exception):
    """Why the image's help could not be read; the spec's flags are then "not checked", never invalid."""


@dataclass(frozen=True)
class ImageHelp:
    """The parsed ``--help`` of ``runtime``'s server in ``image``, and the command that printed it."""

    runtime: str
    image: str
    image_id: str
    command: tuple[str, ...]
    help: EngineHelp

    def describe(self) -> str:
        """What a report says the flags were checked with, and what such a check covers."""
        short = self.image_id.removeprefix("sha256:")[:12]
        return (
            f"{self.runtime} --help of image {self.image} (image id {short}): names, switches and choices "
            "(value types are checked when the engine starts)"
        )


_CACHE: dict[tuple[str, str, str], ImageHelp | str] = {}
_LOCK = threading.Lock()


def image_help(
    runtime: str,
    image: str,
    python: str | None = None,
    *,
    client: docker.DockerClient | None = None,
    timeout: float = HELP_TIMEOUT,
) -> ImageHelp:
    """The help of ``runtime``'s server in the local ``image``; raises :class:`HelpUnavailable` saying why not."""
    if runtime not in HELP_ARGS:
        raise HelpUnavailable(f"no --help command known for {runtime}")
    python = python or profile_for(runtime).container_python
    owned = client is None
    if client is None:
        client = _client()
    try:
        image_id = _local_image_id(client, image)
        key = (image_id, python, runtime)
        with _LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                try:
                    cached = _read_help(client, runtime, image, image_id, python, timeout)
                except HelpUnavailable as unavailable:
                    cached = str(unavailable)
                _CACHE[key] = cached
    finally:
        if owned:
            with contextlib.suppress(*_DOCKER_ERRORS):
                client.close()
    if isinstance(cached, str):
        raise HelpUnavailable(cached)
    return cached


def clear_cache() -> None:
    """Forget every image's help (tests; an image rebuilt under the same id cannot happen, so only tests)."""
    with _LOCK:
        _CACHE.clear()


def _client() -> docker.DockerClient:
    from ..launch.docker import daemon_address

    try:
        client = docker.from_env()
        client.ping()
    except _DOCKER_ERRORS as exc:
        raise HelpUnavailable(
            f"Docker daemon not reachable at {daemon_address()} to read the image's --help ({exc})"
        ) from None
    return client


def _local_image_id(client: docker.DockerClient, image: str) -> str:
    """The id of ``image`` in the local daemon; never pulls."""
    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        raise HelpUnavailable(f"image {image} is not present locally (docker pull it first)") from None
    except _DOCKER_ERRORS as exc:
        raise HelpUnavailable(f"cannot look up image {image}: {exc}") from None


def _read_help(
    client: docker.DockerClient, runtime: str, image: str, image_id: str, python: str, timeout: float
) -> ImageHelp:
    """Run each help command of ``runtime`` until one prints an argparse help; the first failure says why not."""
    module = profile_for(runtime).module
    failures: list[str] = []
    for args in HELP_ARGS[runtime]:
        command = (python, "-m", module, *args)
        code, stdout, stderr = _run(client, runtime, image, command, timeout)
        shown = f"`{' '.join(command)}` in image {image}"
        if code != 0:
            tail = " | ".join(stderr.strip().splitlines()[-3:]) or "no output on stderr"
            failures.append(f"{shown} exited with {code}: {tail}")
            continue
        try:
            return ImageHelp(runtime, image, image_id, command, parse_help(stdout))
        except HelpTextError as exc:
            failures.append(f"{shown} printed no argparse help ({exc})")
    raise HelpUnavailable(failures[0])


def _run(
    client: docker.DockerClient, runtime: str, image: str, command: tuple[str, ...], timeout: float
) -> tuple[int, str, str]:
    """Run ``command`` in a throwaway container without network; (exit code, stdout, stderr). Always removed."""
    from ..launch.docker import LABEL_NAME, LABEL_OWNER, LABEL_RUN, LABEL_RUNTIME
    from ..launch.ownership import Owner

    try:
        container = client.containers.create(
            image=image,
            name=f"autotuner-help-{runtime}-{secrets.token_hex(3)}",
            entrypoint=[command[0]],
            command=list(command[1:]),
            environment={"COLUMNS": str(HELP_COLUMNS), "NO_COLOR": "1", "PYTHON_COLORS": "0", "TERM": "dumb"},
            labels={
                LABEL_RUN: "validate",
                LABEL_OWNER: Owner.current().label(),
                LABEL_NAME: "flag-help",
                LABEL_RUNTIME: runtime,
            },
            network_mode="none",
            detach=True,
            stdin_open=False,
            tty=False,
            auto_remove=False,  # its output is read after it exits, then it is removed here
        )
    except _DOCKER_ERRORS as exc:
        raise HelpUnavailable(f"cannot create a container from {image} to read its --help: {exc}") from None
    try:
        try:
            container.start()
        except _DOCKER_ERRORS as exc:
            raise HelpUnavailable(
                f"cannot run {command[0]!r} in image {image} ({exc}): set engine.python to the interpreter inside "
                "the image"
            ) from None
        try:
            status = container.wait(timeout=timeout)
        except requests.exceptions.RequestException:
            raise HelpUnavailable(
                f"`{' '.join(command)}` in image {image} did not finish within {timeout:.0f}s"
            ) from None
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", errors="replace")
        return int(status.get("StatusCode", -1)), stdout, stderr
    except _DOCKER_ERRORS as exc:
        raise HelpUnavailable(f"Docker failed while reading the --help of {image}: {exc}") from None
    finally:
        with contextlib.suppress(*_DOCKER_ERRORS):
            container.remove(force=True)
