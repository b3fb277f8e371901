"""Run the app under gunicorn: one process, the gevent worker (Socket.IO needs one process).

``serve`` replaces the current process with a fresh interpreter running gunicorn, so gevent
patches the standard library before anything of ours (or requests, ssl, sqlite) is imported,
and background work (catalog watcher, session monitor) starts only in the worker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

# glibc's allocator for the one long-running worker, unless the environment sets its own.
# By default glibc raises its mmap threshold after each large block is freed (up to 32 MiB), so
# ever larger transient buffers land inside the heap between long-lived objects and leave holes
# it cannot give back (bench/soak: free memory inside the heap grew all run). A fixed threshold
# keeps blocks over 512 KiB in mmap, returned to the system when freed; trimming the heap's top
# past 1 MiB is glibc's own rule for that threshold. Two arenas: the worker is one thread for
# Python, and the few native threads (DNS, the Docker client) need no arena each.
MALLOC_ENVIRONMENT = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": str(512 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024),
}


def application() -> Any:
    """The WSGI app gunicorn's worker loads: the full app with its background work."""
    from manager import create_app

    return create_app({"SM_START_BACKGROUND": True})


def serve_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment gunicorn runs in: ``environ`` plus the allocator settings it lacks."""
    return {**MALLOC_ENVIRONMENT, **environ}


def gunicorn_argv(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gevent",
        "--workers", "1",
        "--bind", f"{host}:{port}",
        "--timeout", "120",
        "--graceful-timeout", "20",
        "--keep-alive", "30",
        "--no-control-socket",
        # Believe no peer's X-Forwarded-Proto here: the app does, per SM_TRUSTED_PROXIES.
        "--forwarded-allow-ips", "",
        "manager.server:application()",
    ]  # fmt: skip


def serve(host: str, port: int) -> None:
    """Exec gunicorn; never returns."""
    argv = gunicorn_argv(host, port)
    sys.stdout.flush()
    # glibc reads these when the process starts: they must be in the environment of the exec.
    os.execve(argv[0], argv, serve_environment(os.environ))
