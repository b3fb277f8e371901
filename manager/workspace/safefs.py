"""File operations inside a workspace that a script can never redirect.

A script owns its workspace and may plant symbolic links (to ``/etc/passwd``, to another user's
workspace), hard links, FIFOs or device nodes in it. Every operation here walks the path one
component at a time from a descriptor of the workspace root (``openat``-style, ``O_NOFOLLOW``),
so no string test stands between a request and the host's files: a link is never followed, a
FIFO is never opened for reading in a way that blocks, a hard-linked file is never read or
written, and anything that is not a regular file or a folder is refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_DEPTH = 32
MAX_COMPONENT = 255
CHUNK = 64 * 1024
RUNNER_UID = 10001  # the sessions' uid (manager.sessions.workspace): what we create is theirs


def _give_to_runner(name: str, dir_fd: int) -> None:
    """As root, hand a new file or folder to the sessions' uid so scripts can change it."""
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            os.chown(name, RUNNER_UID, RUNNER_UID, dir_fd=dir_fd, follow_symlinks=False)


class UnsafePath(ValueError):
    """A path or a file the manager refuses to touch; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def split_path(raw: str) -> list[str]:
    """A workspace-relative path as its components; UnsafePath (400) says what is wrong.

    Refused: empty, absolute, NUL or other control characters, backslashes, ``.``/``..``
    components, components over 255 bytes, more than 32 levels.
    """
    if not isinstance(raw, str) or not raw.strip("/"):
        raise UnsafePath("Give a file path inside the workspace, e.g. results/report.csv.")
    if "\x00" in raw:
        raise UnsafePath("A file path cannot contain a NUL character.")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise UnsafePath("A file path cannot contain control characters.")
    if raw.startswith("/"):
        raise UnsafePath(f"{raw!r} is an absolute path; give a path inside the workspace.")
    if "\\" in raw:
        raise UnsafePath("Use '/' to separate folders in a path, not '\\'.")
    parts = [part for part in raw.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise UnsafePath(f"{raw!r} uses '.' or '..'; give a path inside the workspace.")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT for part in parts):
        raise UnsafePath(f"A file or folder name is longer than {MAX_COMPONENT} bytes.")
    if len(parts) > MAX_DEPTH:
        raise UnsafePath(f"The path is deeper than {MAX_DEPTH} folders.")
    return parts


def describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a regular file"


def _refuse_kind(shown: str, mode: int) -> UnsafePath:
    return UnsafePath(
        f"{shown} is {describe(mode)}; the manager only reads and writes regular files "
        "and folders of the workspace, and never follows links.",
        status=403 if not stat.S_ISDIR(mode) else 400,
    )


def open_root(root: str | Path) -> int:
    """A descriptor of the workspace root (itself never a link); FileNotFoundError if absent."""
    return os.open(root, DIR_FLAGS)


def open_dir(root_fd: int, parts: list[str], *, create: bool = False) -> int:
    """Walk ``parts`` (folders) from ``root_fd`` without following links; return a new fd.

    ``create`` makes missing folders. Raises UnsafePath (403) at a link or non-folder,
    FileNotFoundError (404 for callers) at a missing one.
    """
    fd = os.dup(root_fd)
    try:
        for index, name in enumerate(parts):
            shown = "/".join(parts[: index + 1])
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o775, dir_fd=fd)
                    _give_to_runner(name, fd)
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                raise _refuse_kind(shown, info.st_mode)
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:  # swapped for a link or a file since the stat: ELOOP/ENOTDIR
                raise UnsafePath(f"{shown} changed while it was opened; retry.", 409) from exc
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def parent_of(root_fd: int, parts: list[str], *, create: bool = False) -> Iterator[int]:
    fd = open_dir(root_fd, parts[:-1], create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def entry_stat(dir_fd: int, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def _check_regular(shown: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise _refuse_kind(shown, info.st_mode)
    if info.st_nlink > 1:
        raise UnsafePath(
            f"{shown} is a hard link (it has {info.st_nlink} names); the manager does not read "
            "or write files shared with another path.",
            status=403,
        )


def open_regular(dir_fd: int, name: str, shown: str) -> tuple[int, os.stat_result]:
    """Open a regular, singly linked file for reading; never blocks on a FIFO.

    The entry is checked before opening (so a device is never opened) and the open file is
    checked again (so an entry swapped in between is caught).
    """
    _check_regular(shown, entry_stat(dir_fd, name))
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:  # ELOOP: replaced by a symlink since the check
        raise UnsafePath(f"{shown} changed while it was opened; retry.", 409) from exc
    try:
        info = os.fstat(fd)
        _check_regular(shown, info)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def read_file(root_fd: int, parts: list[str], limit: int | None = None) -> bytes:
    """The whole content of a workspace file (at most ``limit`` bytes: UnsafePath 413 past it)."""
    with parent_of(root_fd, parts) as parent:
        fd, info = open_regular(parent, parts[-1], "/".join(parts))
    with os.fdopen(fd, "rb") as handle:
        if limit is not None and info.st_size > limit:
            raise UnsafePath(f"{'/'.join(parts)} is larger than {limit} bytes.", 413)
        return handle.read() if limit is None else handle.read(limit + 1)[:limit]


def write_file(
    root_fd: int, parts: list[str], source: BinaryIO, limit: int, *, overwrite: bool = True
) -> int:
    """Write ``source`` to a workspace file through a temporary file and an atomic rename.

    The rename replaces the directory entry, never what it pointed to; an existing entry that
    is not a regular file (or a hard link) is refused anyway so nobody believes they wrote
    through it. Returns the bytes written; UnsafePath 413 past ``limit`` (nothing kept).
    """
    shown = "/".join(parts)
    with parent_of(root_fd, parts, create=True) as parent:
        name = parts[-1]
        try:
            existing = entry_stat(parent, name)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if not overwrite:
                raise UnsafePath(f"{shown} already exists.", 409)
            _check_regular(shown, existing)
        temp = f".sm-upload-{secrets.token_hex(8)}"
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
            dir_fd=parent,
        )  # fmt: skip
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > limit:
                        raise UnsafePath(
                            f"The file is larger than the {limit}-byte limit.", status=413
                        )
                    out.write(chunk)
            os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=parent)
            raise
        _give_to_runner(name, parent)
        return written


def delete(root_fd: int, parts: list[str]) -> str:
    """Remove a file or a folder (with its content) of the workspace; return what it was.

    A link, FIFO or device entry is removed itself; what it points to is never touched. A folder
    is removed with ``shutil.rmtree`` relative to its parent's descriptor (it never follows
    links either).
    """
    with parent_of(root_fd, parts) as parent:
        name = parts[-1]
        info = entry_stat(parent, name)
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=parent)
            return "folder"
        os.unlink(name, dir_fd=parent)
        return "file" if stat.S_ISREG(info.st_mode) else describe(info.st_mode)


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the workspace root, '/'-separated
    kind: str  # file, folder, link, other
    size: int
    mtime: float
    nlink: int = 1

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "name": self.path.rsplit("/", 1)[-1],
            "type": self.kind,
            "size": self.size,
            "modified": self.mtime,
            **({"hard_link": True} if self.kind == "file" and self.nlink > 1 else {}),
        }


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def walk(root_fd: int, limit: int = 20000) -> Iterator[Entry]:
    """Every entry of the workspace, folder by folder, links listed but never followed.

    Stops after ``limit`` entries (the caller reports the listing as truncated). Each folder
    is reopened from the root with :func:`open_dir`, so at most one listing is open at a time.
    """
    count = 0
    pending: list[list[str]] = [[]]
    while pending:
        parts = pending.pop()
        try:
            fd = open_dir(root_fd, parts)
        except (OSError, UnsafePath):  # removed or swapped meanwhile
            continue
        try:
            with os.scandir(fd) as listing:
                items = sorted(listing, key=lambda e: e.name)
            infos = []
            for item in items:
                try:
                    infos.append((item.name, item.stat(follow_symlinks=False)))
                except OSError:  # removed meanwhile
                    continue
        finally:
            os.close(fd)
        prefix = "".join(f"{p}/" for p in parts)
        folders = []
        for name, info in infos:
            kind = _kind(info.st_mode)
            if kind == "file" and name.startswith(".sm-upload-"):
                continue  # an upload in progress
            count += 1
            if count > limit:
                return
            yield Entry(f"{prefix}{name}", kind, info.st_size, info.st_mtime, info.st_nlink)
            if kind == "folder" and len(parts) < MAX_DEPTH - 1:
                folders.append([*parts, name])
        pending.extend(reversed(folders))
