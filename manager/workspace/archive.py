"""Zip archives of workspaces: streamed to a browser, or kept as a backup before deletion.

Only regular, singly linked files and folders go in; links, FIFOs, devices and hard links are
skipped (and named in ``SKIPPED.txt``), each file opened with the checks of :mod:`safefs`.
"""

from __future__ import annotations

import contextlib
import os
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from manager.workspace import safefs


class _Pipe:
    """A write-only, non-seekable buffer the zip writer fills and the generator drains."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _write_tree(zf: zipfile.ZipFile, root: Path, prefix: str, skipped: list[str]) -> Iterator[None]:
    """Add one workspace under ``prefix``; yields after every chunk so callers can stream."""
    try:
        root_fd = safefs.open_root(root)
    except FileNotFoundError:
        return
    try:
        for entry in safefs.walk(root_fd, limit=1_000_000):
            name = f"{prefix}{entry.path}"
            if entry.kind == "folder":
                zf.writestr(zipfile.ZipInfo(name + "/", time.localtime(entry.mtime)[:6]), b"")
                continue
            parts = entry.path.split("/")
            try:
                with safefs.parent_of(root_fd, parts) as parent:
                    fd, info = safefs.open_regular(parent, parts[-1], entry.path)
            except (OSError, safefs.UnsafePath):
                skipped.append(f"{name} ({entry.kind})")
                continue
            stamp = time.localtime(max(info.st_mtime, 315532800))[:6]  # zip starts in 1980
            zinfo = zipfile.ZipInfo(name, stamp)
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            with os.fdopen(fd, "rb") as source, zf.open(zinfo, "w", force_zip64=True) as out:
                while chunk := source.read(safefs.CHUNK):
                    out.write(chunk)
                    yield
            yield
    finally:
        os.close(root_fd)


def stream_zip(trees: Iterable[tuple[Path, str]]) -> Iterator[bytes]:
    """The zip of several workspaces (root, prefix in the archive), produced as it is read."""
    pipe = _Pipe()
    skipped: list[str] = []
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as zf:  # type: ignore[call-overload]
        for root, prefix in trees:
            for _ in _write_tree(zf, root, prefix, skipped):
                if pipe.position and pipe.chunks:
                    yield pipe.drain()
        if skipped:
            zf.writestr(
                "SKIPPED.txt",
                "Not regular files (links, FIFOs, devices, hard links); not archived:\n"
                + "\n".join(skipped)
                + "\n",
            )
    yield pipe.drain()


def write_zip(target: Path, trees: Iterable[tuple[Path, str]]) -> Path:
    """Write the zip of ``trees`` to ``target`` (created with its folders); return it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with partial.open("wb") as out:
            for chunk in stream_zip(trees):
                out.write(chunk)
        partial.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return target
