"""Run the app under gunicorn: one process, the gevent worker (Socket.IO needs one process).

``serve`` replaces the current process with a fresh interpreter running gunicorn, so gevent
patches the standard library before anything of ours (or requests, ssl, sqlite) is imported,
and background work (catalog watcher, session monitor) starts only in the worker.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def application() -> Any:
    """The WSGI app gunicorn's worker loads: the full app with its background work."""
    from manager import create_app

    return create_app({"SM_START_BACKGROUND": True})


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
    os.execv(argv[0], argv)
