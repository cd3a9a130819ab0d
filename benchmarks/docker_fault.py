"""The Docker daemon stops in the middle of a tuning run (a host update, a crashed daemon).

What must hold: the tool stops with a clear infrastructure error (exit 5) naming Docker, the trials measured
before are kept in results.json, and once the daemon is back, ``autotuner reap`` (the first thing the next run
does) removes the containers the stopped daemon left, so no container of the run is left.

The daemon is a private ``dockerd`` started here (its own data root, exec root, socket and pid file, no bridge,
no iptables), so stopping it can never hit a daemon anyone else uses; it is stopped by its PID. The engine image
is built ``FROM scratch`` with nearly nothing in it, and the host's Python and this repository come in through
read-only bind mounts (``tests/integration/host_image.py``, shared with the Docker launcher tests). The spec
cannot name such mounts (a spec mounts only its model folder), so the tool runs with one seam: a bootstrap that
adds them to every launch request. Everything else is the real CLI and the real docker launcher.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from faults import SLOW_LEVEL, TRIAL_1_BENCH, Row, settle
from sandbox import Sandbox, spec_text

from tests.integration.host_image import build_context, host_paths

REPO = Path(__file__).resolve().parents[1]
IMAGE = "autotuner-reliability-engine:local"
FAULT = "Docker daemon stopped mid-run"

MOUNTS = """
import dataclasses, json, os
import autotuner.tune as tune
from autotuner.launch.base import Mount

_mounts = tuple(Mount(source=__import__("pathlib").Path(p), target=p) for p in json.loads(os.environ["RELIABILITY_MOUNTS"]))
_launcher_for = tune.launcher_for

def launcher_for(kind, settings=None):
    launcher = _launcher_for(kind, settings)
    start = launcher.start
    launcher.start = lambda request: start(dataclasses.replace(request, mounts=request.mounts + _mounts))
    return launcher

tune.launcher_for = launcher_for
"""


def host_mounts() -> list[str]:
    """Host folders that let the host's Python and this project run in the empty image, at the same paths."""
    return [str(path) for path in host_paths(REPO)]


@dataclass
class PrivateDaemon:
    """A dockerd of our own; ``start()`` again after ``stop()`` brings back the same state (its containers)."""

    home: Path  # data root and logs
    tag: str

    @property
    def socket(self) -> str:
        return f"/tmp/adx-{self.tag}.sock"  # short: unix socket paths are limited to 108 bytes

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, wait: float = 60.0) -> int:
        import docker

        (self.home / "daemon.json").write_text("{}")
        log = open(self.home / "dockerd.log", "ab")  # noqa: SIM115 - handed to the daemon for its lifetime
        self.process = subprocess.Popen(  # noqa: S603
            [
                "dockerd",
                "--config-file",
                str(self.home / "daemon.json"),
                "--data-root",
                str(self.home / "data"),
                "--exec-root",
                f"/tmp/adx-{self.tag}",
                "--pidfile",
                str(self.home / "dockerd.pid"),
                "-H",
                self.url,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                # its own containerd namespaces: should it find a shared containerd, it still sees only its own
                "--containerd-namespace",
                f"adx-{self.tag}",
                "--containerd-plugins-namespace",
                f"adx-{self.tag}-p",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.process.returncode}; see {self.home / 'dockerd.log'}")
            try:
                docker.DockerClient(base_url=self.url, timeout=5).ping()
                return self.process.pid
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer within {wait:.0f}s")

    def stop(self) -> None:
        """SIGTERM (dockerd stops its containers), SIGKILL after 30 s; by PID, never by name."""
        process = getattr(self, "process", None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def remove(self) -> None:
        """Unmount what the stopped daemon left mounted under its roots (its network namespace), then delete them."""
        roots = (str(self.home / "data"), f"/tmp/adx-{self.tag}")
        with open("/proc/mounts", encoding="utf-8") as table:
            mounted = [line.split()[1] for line in table if line.split()[1].startswith(roots)]
        for point in sorted(mounted, key=len, reverse=True):
            subprocess.run(["umount", point], capture_output=True)
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
        Path(self.socket).unlink(missing_ok=True)


def docker_stopped(root: Path) -> list[Row]:
    started = time.monotonic()
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        return [Row(FAULT, "skipped: needs dockerd and root (.ci/docker.sh installs docker.io)", 0, 0)]
    box = Sandbox(root)
    daemon = PrivateDaemon(root / "dockerd", uuid.uuid4().hex[:8])
    daemon.home.mkdir(parents=True, exist_ok=True)
    try:
        daemon.start()
    except RuntimeError as exc:
        daemon.stop()
        daemon.remove()
        return [Row(FAULT, f"skipped: private dockerd did not start: {exc}", 0, 0)]
    try:
        return _docker_stopped(box, daemon, started)
    finally:
        daemon.stop()
        daemon.remove()


def _docker_stopped(box: Sandbox, daemon: PrivateDaemon, started: float) -> list[Row]:
    import docker

    client = docker.DockerClient(base_url=daemon.url, timeout=30)
    client.images.build(fileobj=build_context(), custom_context=True, tag=IMAGE, rm=True, forcerm=True)
    name = "rel-docker-stopped"
    engine = (
        f"{{runtime: sim, launcher: docker, image: '{IMAGE}', python: {sys.executable}, "
        f"args: {{{SLOW_LEVEL}}}, env: {{PYTHONPATH: {REPO}}}, startup_timeout: 60s}}"
    )
    workload = '{scenarios: ["D(32,16)"], concurrency: [2], max_requests: 12, max_time: 1m, warmup_requests: 0}'
    spec = box.write_spec(
        name, spec_text(name, engine=engine, parameters="{max-num-seqs: [1, 2, 4]}", workload=workload)
    )
    env = box.env({"DOCKER_HOST": daemon.url, "RELIABILITY_MOUNTS": json.dumps(host_mounts())})
    tool = box.start(box.tool(*box.tune_args(spec), bootstrap=MOUNTS), env=env)
    problems: list[str] = []
    if tool.wait_for(TRIAL_1_BENCH, 240):
        time.sleep(1.0)
        daemon.stop()
    else:
        problems.append("the second trial never reached its benchmark")
    run = tool.finish(300)
    last = run.output.strip().splitlines()[-1] if run.output.strip() else ""
    if run.code != 5:
        problems.append(f"exit {run.code}, expected 5 (infrastructure)")
    if "Docker" not in last:
        problems.append("the last line does not name Docker")
    if "Traceback" in run.output:
        problems.append("a traceback was printed")
    daemon.start()  # back, with the containers the stop left
    reap = box.run(box.tool("reap", "--launcher", "docker"), env=env, timeout=120)
    client = docker.DockerClient(base_url=daemon.url, timeout=30)
    containers = [c.name for c in client.containers.list(all=True, filters={"label": "autotuner.owner"})]
    for leftover in client.containers.list(all=True, filters={"label": "autotuner.owner"}):
        leftover.remove(force=True)
    settled = settle(box, run, name)
    settled.left += [f"container {c}" for c in containers]
    problems += [f"lost trials {sorted(settled.lost)}"] if settled.lost else []
    problems += [f"left: {item}" for item in settled.left]
    text = f"exit {run.code}: {last[:70]}; reap: {reap.output.count('stopped ')} container(s) removed"
    return [Row(FAULT, text, len(settled.lost), len(settled.left), problems, "", time.monotonic() - started)]
