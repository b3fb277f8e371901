"""WebSocket upgrades: hand the handshake to the container, then pipe bytes both ways."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from manager.proxy import answer, outgoing, pages
from manager.proxy.auth import Identity
from manager.proxy.headers import response_headers
from manager.proxy.resolver import ProxyTarget
from manager.proxy.upstream import UpstreamError, close, read_head

if TYPE_CHECKING:
    from manager.proxy.middleware import ProxyMiddleware

log = logging.getLogger("scriptsmanager.proxy")

PIPE_SIZE = 64 * 1024
TOUCH_INTERVAL = 30.0  # an open WebSocket keeps its session from going idle
UPGRADE_FRAMING = "Connection: Upgrade\r\nUpgrade: websocket\r\n"


class _Done(Exception):
    """Raised to the development server after the connection was taken over."""


def relay(
    proxy: ProxyMiddleware,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    target: ProxyTarget,
    prefix: str,
    identity: Identity,
) -> Iterable[bytes]:
    """Relay one WebSocket connection for its whole life; the server's socket is taken over.

    Under gunicorn the connection ends with StopIteration (gunicorn closes the socket), under
    the development server with ConnectionError; both are how those servers expect a hijacked
    socket to be given back.
    """
    client: socket.socket | None = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if client is None:
        return pages.error(
            proxy.app,
            environ,
            start_response,
            400,
            "This server cannot relay WebSocket connections.",
        )
    conn = proxy.pool.connect(target.host, target.port)
    try:
        head = outgoing.request_head(environ, target, prefix, identity, UPGRADE_FRAMING)
        conn.sock.sendall(head)
        response = read_head(conn, "GET")
    except (OSError, UpstreamError) as exc:
        close(conn)
        raise UpstreamError(f"WebSocket handshake: {exc}") from exc
    if response.code != 101:
        response.keep_alive = False
        return answer.respond(
            proxy, environ, conn, response, start_response, target, prefix, identity
        )
    headers = response_headers(
        response.lines,
        prefix=prefix,
        upstream_hosts={f"{target.host}:{target.port}"},
        forbidden_cookies=proxy.forbidden_cookies,
        protect=proxy.protection(identity),
    )
    lines = [f"HTTP/1.1 {response.status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    lines.append("\r\n")
    try:
        client.sendall("".join(lines).encode("latin-1") + response.rest)
        conn.sock.settimeout(None)
        _pipe_both_ways(client, conn.sock, lambda: proxy.touch(target.session_key))
    finally:
        close(conn)
    if "gunicorn.socket" in environ:
        raise StopIteration  # gunicorn: close this connection, write nothing more
    raise ConnectionAbortedError("WebSocket closed")  # werkzeug: the connection was dropped


def _pipe_both_ways(
    client: socket.socket, upstream: socket.socket, touch: Callable[[], None]
) -> None:
    """Copy bytes in both directions until both sides have finished."""
    threads = [
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True),
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(TOUCH_INTERVAL)
            touch()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction; an end of stream is passed on, an error ends both directions."""
    ends = [(sink, socket.SHUT_WR)]
    try:
        while True:
            data = source.recv(PIPE_SIZE)
            if not data:
                break
            sink.sendall(data)
    except OSError as exc:
        log.debug("WebSocket pipe ended: %s", exc)
        ends = [(sink, socket.SHUT_RDWR), (source, socket.SHUT_RDWR)]
    for sock, how in ends:
        with contextlib.suppress(OSError):
            sock.shutdown(how)
