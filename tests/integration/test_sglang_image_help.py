"""``autotuner validate`` checks a docker spec's SGLang flags with the ``--help`` of the REAL SGLang in its image.

No SGLang image can be pulled here, so one is built: ``FROM scratch`` plus exactly the files that
``python -m sglang.launch_server --help`` uses on this host with the sglang venv of .ci/sglang-env.sh (SGLang
0.5.23 itself, torch, triton, the Python installation, libc ...; about 1.1 GB, hard-linked into the build context,
so the build copies them once). The image is self-contained on purpose: the tool runs the help container with no
mounts, as it would run ``lmsysorg/sglang``, and the test must not need a way in that users do not have. The files
are found by running the same command on the host with an audit hook (every file opened), a record of every path
``os.stat``/``os.access`` found (torch checks that its ``torch_shm_manager`` exists), the process's memory map
(every shared library, plus the links the loader opens them by) and the imported modules' files; symbolic links
on the way are recreated as links.

Then ``autotuner validate`` runs as a user runs it, with no local SGLang interpreter (AUTOTUNER_SGLANG_PYTHON
unset, the default venv location pointed elsewhere, the venv off PATH): the flags must be checked by the image's
help, a misspelt flag must come with the right suggestion, the good ones must pass. The image and every container
are removed afterwards. Needs a Docker daemon (``.ci/docker.sh start``) and the sglang venv; without them it
skips, except under ``CI=true`` where either missing is a failure.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from autotuner.cli import EXIT_INVALID
from autotuner.engines import image_help
from autotuner.engines.help_text import EngineHelp, parse_help

from .engine_venvs import require_python, unavailable
from .host_image import rootfs_tar
from .test_docker_launcher import docker_client

__all__ = ["docker_client"]  # a fixture of the docker launcher tests: a client, or a skip (a failure in CI)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "engine_help" / "sglang-0.5.23.help.txt.gz"
TAG = f"autotuner-test-sglang-help:{uuid.uuid4().hex[:8]}"

# Run with the engine's interpreter: runs `python -m MODULE ARGS...` as -m would and writes every file it used.
TRACER = r"""
import json, os, runpy, struct, sys

output, module, *args = sys.argv[1:]
used = set()

def hook(event, details):
    if event in ("open", "os.listdir", "os.scandir") and details and isinstance(details[0], (str, bytes)):
        used.add(os.fsdecode(details[0]))

def elf_interpreter(path):
    with open(path, "rb") as elf:
        head = elf.read(64)
        if head[:5] != b"\x7fELF\x02":
            return None
        phoff, = struct.unpack_from("<Q", head, 0x20)
        size, count = struct.unpack_from("<HH", head, 0x36)
        for index in range(count):
            elf.seek(phoff + index * size)
            kind, _, offset, _, _, filesz = struct.unpack("<IIQQQQ", elf.read(40))
            if kind == 3:  # PT_INTERP
                elf.seek(offset)
                return elf.read(filesz).rstrip(b"\0").decode()
    return None

def recording(function):  # no audit event for stat: os.path.exists(torch/bin/torch_shm_manager) must succeed too
    def wrapper(path, *rest, **options):
        result = function(path, *rest, **options)
        if isinstance(path, (str, bytes, os.PathLike)):
            used.add(os.fsdecode(path))
        return result
    return wrapper

for name in ("stat", "lstat", "access", "readlink"):
    setattr(os, name, recording(getattr(os, name)))
sys.addaudithook(hook)
sys.argv = [module, *args]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
with open("/proc/self/maps") as maps:
    used |= {line.split()[5] for line in maps if len(line.split()) >= 6 and line.split()[5].startswith("/")}
used |= {m.__file__ for m in list(sys.modules.values()) if isinstance(getattr(m, "__file__", None), str)}
# read before the hook was installed: the interpreter, its venv marker, the .pth files of site
used |= {sys.executable, os.path.join(sys.prefix, "pyvenv.cfg"), elf_interpreter(os.path.realpath(sys.executable))}
for folder in sys.path:
    if os.path.isdir(folder):
        used |= {os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".pth")}
# a module that replaces itself in sys.modules (torch._VF) has no __file__: its source is next to its bytecode
for path in list(used):
    folder, name = os.path.split(path)
    if os.path.basename(folder) == "__pycache__" and name.endswith(".pyc"):
        used.add(os.path.join(os.path.dirname(folder), name.split(".")[0] + ".py"))
skip = ("/proc/", "/sys/", "/dev/")
with open(output, "w") as out:
    json.dump(sorted(p for p in used if p and os.path.isabs(p) and not p.startswith(skip) and os.path.exists(p)), out)
"""


def copy_path(path: str, rootfs: Path, depth: int = 0) -> None:
    """Put ``path`` into ``rootfs`` at the same place: links recreated as links (and followed), files hard-linked."""
    if depth > 40:
        raise RuntimeError(f"too many levels of symbolic links at {path}")
    parts = Path(path).parts[1:]
    current = Path("/")
    for index, part in enumerate(parts):
        candidate = current / part
        if candidate.is_symlink():
            link = rootfs / candidate.relative_to("/")
            target = os.readlink(candidate)
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target)
            resolved = os.path.normpath(os.path.join(candidate.parent, target))
            copy_path(os.path.join(resolved, *parts[index + 1 :]), rootfs, depth + 1)
            return
        current = candidate
    destination = rootfs / current.relative_to("/")
    if current.is_dir():
        destination.mkdir(parents=True, exist_ok=True)
    elif not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(current, destination)
        except OSError:  # another filesystem: copy
            destination.write_bytes(current.read_bytes())
            destination.chmod(current.stat().st_mode & 0o7777)


def library_links(paths: list[str]) -> list[str]:
    """The links next to each shared library that point at it (``libz.so.1`` -> ``libz.so.1.2.13``).

    The memory map names libraries by their real files, but the dynamic loader opens them by the name they were
    linked against, which is usually such a link.
    """
    libraries = {os.path.realpath(p) for p in paths if ".so" in Path(p).name}
    links = []
    for folder in {os.path.dirname(p) for p in libraries}:
        with os.scandir(folder) as entries:
            links += [e.path for e in entries if e.is_symlink() and os.path.realpath(e.path) in libraries]
    return links


def huggingface_hub_folder(python: str, scratch: Path) -> str | None:
    """``sglang.launch_server`` imports huggingface_hub before parsing; the parser-only venv may not have it."""
    if subprocess.run([python, "-c", "import huggingface_hub"], capture_output=True, check=False).returncode == 0:
        return None
    spec = importlib.util.find_spec("huggingface_hub")
    if spec is None or spec.origin is None:
        unavailable("sglang", "the sglang venv has no huggingface_hub (launch_server imports it), nor has this Python")
    assert spec is not None and spec.origin is not None
    folder = scratch / "hub"
    folder.mkdir()
    (folder / "huggingface_hub").symlink_to(Path(spec.origin).parent)  # pure Python, same Python release
    return str(folder)


def build_sglang_image(client: docker.DockerClient, python: str, scratch: Path) -> tuple[str, float, int]:
    """Build TAG from what ``python -m sglang.launch_server --help`` uses; (image id, seconds, bytes copied)."""
    started = time.monotonic()
    hub = huggingface_hub_folder(python, scratch)
    env = {**os.environ, "COLUMNS": str(image_help.HELP_COLUMNS)}
    if hub:
        env["PYTHONPATH"] = hub
    listing = scratch / "used.json"
    traced = subprocess.run(  # noqa: S603
        [python, "-c", TRACER, str(listing), "sglang.launch_server", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if not listing.exists():
        unavailable("sglang", f"`{python} -m sglang.launch_server --help` failed on the host: {traced.stderr[-1500:]}")
    context = scratch / "context"
    rootfs = context / "rootfs"
    rootfs.mkdir(parents=True)
    used = json.loads(listing.read_text())
    for path in used + library_links(used):
        copy_path(path, rootfs)
    size = sum(p.stat().st_size for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink())
    (context / "base.tar").write_bytes(rootfs_tar())
    environment = f"ENV PYTHONPATH={hub}\n" if hub else ""
    (context / "Dockerfile").write_text(
        f'FROM scratch\nADD base.tar /\nCOPY rootfs/ /\n{environment}LABEL autotuner.test="sglang help image"\n'
    )
    image, _ = client.images.build(path=str(context), tag=TAG, rm=True, forcerm=True)
    return str(image.id), time.monotonic() - started, size


@pytest.fixture(scope="module")
def sglang_python() -> str:
    return require_python("sglang")


@pytest.fixture(scope="module")
def sglang_image(
    docker_client: docker.DockerClient, sglang_python: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    scratch = tmp_path_factory.mktemp("sglang-image")
    try:
        image_id, seconds, size = build_sglang_image(docker_client, sglang_python, scratch)
        print(f"\nbuilt {TAG} ({image_id[:19]}) from {size / 1e9:.2f} GB in {seconds:.0f} s")
        yield TAG
    finally:
        for container in docker_client.containers.list(all=True, filters={"ancestor": TAG}):
            container.remove(force=True)
        try:
            docker_client.images.remove(TAG, force=True, noprune=False)
        except docker.errors.ImageNotFound:
            pass
        shutil.rmtree(scratch, ignore_errors=True)  # the hard-linked build context (no space, but 3000 entries)


SPEC = """\
name: NAME
model: {id: Qwen/Qwen2.5-0.5B-Instruct}
engine:
  runtime: sglang
  launcher: docker
  image: IMAGE
  python: PYTHON
  args: ARGS
parameters:
  schedule-policy: POLICIES
  cuda-graph-max-bs-decode: [8, 16]
workload: {task: text-to-text, scenarios: ["D(64,64)"], concurrency: [1], max_requests: 4, max_time: 1m}
objective: {maximize: output_throughput}
search: {strategy: grid, max_trials: 4}
"""


def write_spec(folder: Path, name: str, image: str, python: str, args: str, policies: str) -> Path:
    text = SPEC.replace("NAME", name).replace("IMAGE", image).replace("PYTHON", python)
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("ARGS", args).replace("POLICIES", policies))
    return path


def validate(*paths: Path, tmp_path: Path, sglang_python: str) -> subprocess.CompletedProcess[str]:
    """``autotuner validate`` as a user runs it, on a machine where no local interpreter has SGLang."""
    env = dict(os.environ)
    env.pop("AUTOTUNER_SGLANG_PYTHON", None)
    env["AUTOTUNER_SGLANG_VENV"] = str(tmp_path / "no-sglang-venv")
    venv_bin = str(Path(sglang_python).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "autotuner", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=900,
        check=False,
    )


def test_this_interpreter_has_no_sglang() -> None:
    """Otherwise the tool would (rightly) use it, and the image would not be asked."""
    assert importlib.util.find_spec("sglang") is None


def test_validate_reports_bad_flags_from_the_image_help(
    sglang_image: str, sglang_python: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    bad = write_spec(
        tmp_path,
        "bad",
        sglang_image,
        sglang_python,
        "{disable-radix-cach: true, mem-fraction-static: 0.8}",
        "[lpm, lifo]",
    )
    started = time.monotonic()
    done = validate(bad, tmp_path=tmp_path, sglang_python=sglang_python)
    print(f"\nvalidate (bad spec): {time.monotonic() - started:.1f} s\n{done.stdout}{done.stderr[-2000:]}")
    assert done.returncode == EXIT_INVALID, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(
        re.match(
            r".*bad\.yaml:8:10: engine\.args\.disable-radix-cach: unknown sglang flag 'disable-radix-cach': "
            r"did you mean 'disable-radix-cache'\?$",
            line,
        )
        for line in lines
    ), lines
    assert any(
        "bad.yaml:10:" in line and "invalid value 'lifo' (choose from lpm, random, fcfs" in line for line in lines
    ), lines
    assert lines[-1] == "2 problem(s) in 1 file(s)"  # mem-fraction-static, lpm, cuda-graph-max-bs-decode are fine
    assert docker_client.containers.list(all=True, filters={"ancestor": sglang_image}) == []


def test_validate_accepts_good_flags_and_says_what_checked_them(
    sglang_image: str, sglang_python: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    good = write_spec(
        tmp_path,
        "good",
        sglang_image,
        sglang_python,
        "{disable-radix-cache: true, mem-fraction-static: 0.8}",
        "[lpm, fcfs]",
    )
    absent = write_spec(tmp_path, "absent", f"{TAG}-absent", sglang_python, "{disable-radix-cache: true}", "[lpm]")
    done = validate(good, absent, tmp_path=tmp_path, sglang_python=sglang_python)
    assert done.returncode == 0, done.stdout + done.stderr
    (good_line,) = [line for line in done.stdout.splitlines() if "good.yaml" in line]
    image_id = docker_client.images.get(sglang_image).id.removeprefix("sha256:")[:12]
    assert f"flags: sglang --help of image {sglang_image} (image id {image_id})" in good_line, good_line
    (absent_line,) = [line for line in done.stdout.splitlines() if "absent.yaml" in line]
    assert f"flags: not checked: image {TAG}-absent is not present locally (docker pull it first)" in absent_line
    assert docker_client.containers.list(all=True, filters={"ancestor": sglang_image}) == []


def test_the_image_prints_the_fixtures_help(sglang_image: str, sglang_python: str) -> None:
    """The unit tests' fixture is what this SGLang prints in a container: same options, switches and choices.

    Choices are compared as sets: SGLang builds some from a set (``--sampling-backend``), in hash order.
    """
    image_help.clear_cache()
    found = image_help.image_help("sglang", sglang_image, sglang_python)
    expected = parse_help(gzip.decompress(FIXTURE.read_bytes()).decode())

    def shapes(help_: EngineHelp) -> dict[str, tuple[object, ...]]:
        return {
            option: (entry.strings, entry.min_values, entry.max_values, frozenset(entry.choices or ()))
            for option, entry in help_.options.items()
        }

    assert shapes(found.help) == shapes(expected)
