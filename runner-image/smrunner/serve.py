"""Serve the script's app with a production WSGI server until SIGTERM."""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger("smrunner")

# waitress, not gunicorn: it is pure Python (a wheel that installs on any base, no compiler), it
# serves from a thread pool inside this one process, so the state the script built at module level
# (globals, caches, background threads) is what every request sees, as in the seed's in-process
# model; gunicorn would fork a worker after the script ran (losing its threads) or run the script
# once per worker. It also needs no writable directory (gunicorn's worker heartbeat file does) on
# the read-only root filesystem. Its limit: no WebSocket; scripts needing one need another server.
DEFAULT_THREADS = 8


def serve(app: Flask, port: int, host: str = "0.0.0.0", threads: int = DEFAULT_THREADS) -> int:
    """Serve ``app`` on ``host:port`` until SIGTERM or SIGINT; return the exit status (0).

    The runner's SIGTERM handler raises SystemExit in the main thread, which sits in waitress's
    event loop; waitress catches it and lets in-flight requests finish (up to its 5 s timeout).
    """
    from waitress import create_server

    server = create_server(app, host=host, port=port, threads=threads, ident="smrunner")
    log.info("serving on %s:%d", host, port)
    try:
        server.run()
    finally:
        server.close()
    log.info("server stopped")
    return 0
