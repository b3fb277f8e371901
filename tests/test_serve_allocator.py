"""``scriptsmanager serve`` runs gunicorn with glibc's allocator fixed for a long-running worker."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from manager import server


def test_serve_execs_gunicorn_with_the_allocator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, argv, env))

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "4096")  # an operator's own choice
    monkeypatch.setenv("SM_SOMETHING", "kept")
    server.serve("127.0.0.1", 5002)
    [(path, argv, env)] = calls
    assert argv == server.gunicorn_argv("127.0.0.1", 5002) and path == argv[0]
    assert env["MALLOC_ARENA_MAX"] == "2"
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(512 * 1024)
    assert env["MALLOC_TRIM_THRESHOLD_"] == "4096"  # the environment wins
    assert env["SM_SOMETHING"] == "kept"


PROBE = """
import ctypes
NAMES = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in NAMES.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
# glibc raises its dynamic threshold when an mmapped block is freed: free a 4 MiB one first.
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(600 * 1024)
print(libc.mallinfo2().hblks - before)
libc.free(block)
"""


def _mmapped_blocks(env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_the_settings_keep_large_blocks_out_of_the_heap() -> None:
    """With glibc's defaults a 600 KiB block lands in the heap after a larger one was freed;
    with the serve settings it is mmapped (and handed back when freed)."""
    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018 - glibc 2.33 or later
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    plain = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert _mmapped_blocks(plain) == 0
    assert _mmapped_blocks(server.serve_environment(plain)) == 1
