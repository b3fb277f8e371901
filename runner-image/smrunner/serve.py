"""Serve the script's app with a production WSGI server until SIGTERM."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("smrunner")

# waitress, not gunicorn: it is pure Python (a wheel that installs on any base, no compiler), it
# serves from a thread pool inside this one process, so the state the script built at module level
# (globals, caches, background threads) is what every request sees, as in the seed's in-process
# model; gunicorn would fork a worker after the script ran (losing its threads) or run the script
# once per worker. It also needs no writable directory (gunicorn's worker heartbeat file does) on
# the read-only root filesystem. Its limit: no WebSocket; scripts needing one need another server.
DEFAULT_THREADS = 8
BACKLOG = 1024  # waitress's own default


def listen_early(port: int, host: str = "0.0.0.0") -> socket.socket | None:
    """Listen on ``host:port`` now, before Flask and the script are loaded; None if it cannot.

    Until the server takes over the socket, connections wait in its backlog instead of being
    refused: the proxy's health check of a starting session, sent as soon as the container
    runs, is answered the moment the app serves, with no polling interval lost (about 5 ms of
    a cold start on average, bench/README.md) and no refused connections while Python starts.
    If the runner exits instead, the waiting connections are reset, as a refusal would be.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(BACKLOG)
    except OSError as exc:
        listener.close()
        log.warning("cannot listen on %s:%d yet (%s); the server will try again", host, port, exc)
        return None
    return listener


def serve(
    app: Flask,
    port: int,
    host: str = "0.0.0.0",
    threads: int = DEFAULT_THREADS,
    listener: socket.socket | None = None,
) -> int:
    """Serve ``app`` on ``host:port`` (or on ``listener``, already listening there) until
    SIGTERM or SIGINT; return the exit status (0).

    The runner's SIGTERM handler raises SystemExit in the main thread, which sits in waitress's
    event loop; waitress catches it and lets in-flight requests finish (up to its 5 s timeout).
    """
    from waitress import create_server

    if listener is not None:
        server = create_server(app, sockets=[listener], threads=threads, ident="smrunner")
    else:
        server = create_server(app, host=host, port=port, threads=threads, ident="smrunner")
    log.info("serving on %s:%d", host, port)
    try:
        server.run()
    finally:
        server.close()
    log.info("server stopped")
    return 0
