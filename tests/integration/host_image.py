"""An engine image with nearly nothing in it: the host's Python and this project come in by read-only bind mounts.

No container registry is reachable from these machines, so no engine image can be pulled; an image built
``FROM scratch`` from a tarball of mount points, run with the host's ``/usr``, Python and repository mounted at the
same paths, runs the real engines (xllamacpp, the sim) inside a real container. Shared by the Docker launcher
tests (``test_docker_launcher.py``) and the daemon-stop benchmark (``benchmarks/docker_fault.py``).
"""

from __future__ import annotations

import io
import os
import site
import sys
import tarfile
from pathlib import Path

# /sbin stays a real folder in the image: Docker's init is mounted at /sbin/docker-init, which a link into the
# host's /usr (where it is /usr/bin/docker-init, or absent) would hide.
TOP_LEVEL_LINKS = ("bin", "lib", "lib32", "lib64", "libx32")


def host_paths(repo: Path) -> list[Path]:
    """Host folders to mount read-only at the same paths so the host's Python and ``repo`` run in the image.

    ``/usr`` (libc, libstdc++, libgomp), top-level library folders that are real folders on this host (on a
    merged-/usr host they are links, recreated in the image), the Python installation and its virtual
    environment, site-packages wherever they are, and the repository (an editable install points at it); a
    folder inside another one chosen is left out (the outer mount brings it).
    """
    candidates = [Path("/usr")]
    candidates += [Path("/", name) for name in TOP_LEVEL_LINKS if Path("/", name).is_dir()]
    candidates = [p for p in candidates if not p.is_symlink()]
    candidates += [Path(sys.base_prefix), Path(sys.prefix), *map(Path, site.getsitepackages()), repo]
    paths = {p.absolute() for p in candidates if p.exists()} | {p.resolve() for p in candidates if p.exists()}
    chosen: list[Path] = []
    for path in sorted(paths, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(parent) for parent in chosen):
            chosen.append(path)
    return chosen


def rootfs_tar() -> bytes:
    """The image's only content: mount points, a writable /tmp, users for getpwuid, merged-/usr links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, kind: bytes, mode: int = 0o755, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for folder in ("usr", "etc", "root", "dev", "proc", "sys", "run", "var", "sbin"):
            add(folder, tarfile.DIRTYPE)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("var/tmp", tarfile.DIRTYPE, 0o1777)
        for name in TOP_LEVEL_LINKS:
            host = Path("/", name)
            if host.is_symlink():
                add(name, tarfile.SYMTYPE, link=os.readlink(host))
        add(
            "etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        )
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
    return buffer.getvalue()


def build_context(label: str = "") -> io.BytesIO:
    """A build context for ``images.build(custom_context=True)``: a Dockerfile whose ``ADD`` unpacks the tarball.

    ``label`` (``key="value"``) marks the image, so a test can tell its own images apart."""
    dockerfile = "FROM scratch\nADD rootfs.tar /\n" + (f"LABEL {label}\n" if label else "") + "WORKDIR /tmp\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), "rootfs.tar": rootfs_tar()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    return context
