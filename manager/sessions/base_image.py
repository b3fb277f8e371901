"""The debootstrap base image, for hosts that cannot pull ``python:3.11-slim-bookworm``.

Builds an equivalent Python 3.11 Debian base with debootstrap from the mirror the host's apt
configuration names (read at run time, never written into the repository), then imports it into
Docker. Also holds what every image builder shares: ``ImageBuildError`` and the command runner.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEBOOTSTRAP_BASE_TAG = "scriptsmanager-base:bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "python-is-python3")

Progress = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step failed and why."""


def ignore_progress(line: str) -> None:
    """Default progress sink: drop the line."""


def run_command(cmd: list[str], progress: Progress, what: str, **kwargs: Any) -> None:
    """Run ``cmd``, passing each output line to ``progress``; raise ImageBuildError on failure."""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    ) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            progress(line.rstrip())
            tail = (tail + [line.rstrip()])[-5:]
    if proc.returncode:
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def apt_mirror(suite: str = "bookworm", apt_dir: str | Path = "/etc/apt") -> str:
    """Return the URI of the Debian mirror the host's apt configuration uses for ``suite``.

    Reads deb822 ``sources.list.d/*.sources`` files, then one-line ``sources.list`` and
    ``sources.list.d/*.list`` files. Raises LookupError when none lists ``suite``.
    """
    for uri, suites in apt_sources(apt_dir):
        if suite in suites:
            return uri
    raise LookupError(f"no 'deb' source for suite {suite!r} in {apt_dir}")


def apt_sources(apt_dir: str | Path = "/etc/apt") -> list[tuple[str, list[str]]]:
    """Return ``(uri, suites)`` for every enabled ``deb`` source of the host's apt configuration."""
    apt_dir = Path(apt_dir)
    found: list[tuple[str, list[str]]] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ", "\t")):
                    fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri, fields.get("suites", "").split()))
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                found.append((words[1], [words[2]]))
    return found


def build_base_image(
    docker_client: Any,
    tag: str = DEBOOTSTRAP_BASE_TAG,
    *,
    suite: str = "bookworm",
    mirror: str | None = None,
    apt_dir: str | Path = "/etc/apt",
    workdir: str | Path | None = None,
    progress: Progress = ignore_progress,
) -> str:
    """Build a Python 3.11 base image equivalent to ``python:3.11-slim-bookworm`` with debootstrap.

    Needs root and the ``debootstrap`` command; the mirror defaults to the one the host's apt
    configuration uses. Returns ``tag``. Raises ImageBuildError when a step fails.
    """
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = mirror or apt_mirror(suite, apt_dir)
    root = Path(tempfile.mkdtemp(prefix="sm-rootfs-", dir=workdir))
    try:
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
        progress(f"debootstrap {suite} from the host's configured mirror into {root}")
        run_command([*cmd, suite, str(root), mirror], progress, "debootstrap")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/man"):
            for item in (root / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        progress(f"importing {root} as {tag}")
        _import_rootfs(docker_client, root, tag)
    finally:
        _remove_rootfs(root)
    return tag


def _import_rootfs(docker_client: Any, root: Path, tag: str) -> None:
    """Stream ``root`` as a tar archive into ``docker import``."""
    repository, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "")
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
    ]
    tar = ["tar", "--numeric-owner", "-C", str(root), "-c", "."]
    with subprocess.Popen(tar, stdout=subprocess.PIPE) as proc:
        answer = docker_client.api.import_image_from_stream(
            proc.stdout, repository=repository, tag=version or "latest", changes=changes
        )
    if proc.returncode:
        raise ImageBuildError(f"tar of {root} failed (exit {proc.returncode})")
    if '"error"' in str(answer):
        raise ImageBuildError(f"docker import failed: {answer}")


def _mounts_under(root: Path) -> list[str]:
    """Return the mount points at or below ``root``, deepest first."""
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point == str(root) or point.startswith(f"{root}/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _remove_rootfs(root: Path) -> None:
    """Delete a debootstrap tree, unmounting anything a failed run left mounted inside it.

    Raises ImageBuildError instead of deleting when a mount cannot be undone: deleting through
    a bind mount of the host's /dev or /proc would damage the host.
    """
    for point in _mounts_under(root):
        subprocess.run(["umount", point], check=False)
    if _mounts_under(root):
        raise ImageBuildError(f"{root} still has mounts inside; unmount them and delete it by hand")
    shutil.rmtree(root, ignore_errors=True)
