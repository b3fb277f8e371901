"""Answer on the client socket directly under gunicorn's gevent worker, bypassing its writer.

gunicorn's async workers let an application write the response itself and return
``ALREADY_HANDLED``; the worker then goes on reading the next request on the same keep-alive
connection. Doing so saves a system call (head and body leave in one write), gunicorn's
per-header checks, and a trip through Python per relayed chunk.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from manager.proxy.upstream import (
    BODY_BUFFERS,
    READ_SIZE,
    Connection,
    ResponseHead,
    UpstreamError,
    send_all,
)

GATHER = 32 * 1024  # bodies up to this size leave with their head, in one write

try:
    from gunicorn.workers.base_async import ALREADY_HANDLED
except ImportError:  # not running under gunicorn
    ALREADY_HANDLED = None


def client_socket(environ: Mapping[str, Any], response: ResponseHead) -> socket.socket | None:
    """The client socket when this response can be written directly, else None.

    Only under gunicorn's gevent worker (a gevent socket in ``gunicorn.socket``), for HTTP/1.1
    clients and bodies of known length; everything else goes through plain WSGI.
    """
    if ALREADY_HANDLED is None or response.length is None:
        return None
    sock = environ.get("gunicorn.socket")
    if sock is None or environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
        return None
    if not type(sock).__module__.startswith("gevent."):
        return None
    return sock


def response_head(status: str, headers: list[tuple[str, str]], *, closing: bool) -> bytes:
    """The status line and headers written to the client, and the blank line."""
    lines = [f"HTTP/1.1 {status}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    if closing:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def send_response(
    client: socket.socket,
    conn: Connection,
    response: ResponseHead,
    headers: list[tuple[str, str]],
    *,
    closing: bool,
) -> bool:
    """Write the response with ``headers`` to the client; True when the upstream connection
    may be reused (see ``send_head``)."""
    return send_head(
        client, conn, response, response_head(response.status, headers, closing=closing)
    )


def send_head(client: socket.socket, conn: Connection, response: ResponseHead, head: bytes) -> bool:
    """Write ``head`` (see ``response_head``) and the body to the client; True when the
    upstream connection may be reused.

    Raises OSError when the client goes away, UpstreamError when the container does.
    """
    rest = response.rest
    length = response.length or 0
    if len(rest) >= length:
        send_all(client, head + rest[:length] if length else head)
        return len(rest) == length
    if length <= GATHER:
        # The container sent its head before a small body (Flask/gunicorn write them
        # separately): wait for the body and answer in one write, as a buffering proxy does,
        # rather than two writes and two wake-ups of the client.
        send_all(client, head + rest + _read_exactly(conn, length - len(rest)))
        return True
    client.sendall(head + rest if len(rest) < 16384 else head)
    if len(rest) >= 16384:
        client.sendall(rest)
    _copy(conn, client, length - len(rest))
    return True


def _read_exactly(conn: Connection, count: int) -> bytes:
    """The next ``count`` body bytes (a few KiB at most), read into a reused buffer."""
    buffer = BODY_BUFFERS.take()
    view = memoryview(buffer)
    recv_into = conn.reader.recv_into
    filled = 0
    try:
        while filled < count:
            try:
                got = recv_into(view[filled:count])
            except OSError as exc:
                raise UpstreamError(f"reading body: {exc}", before_response=False) from exc
            if not got:
                raise UpstreamError("body cut short", before_response=False)
            filled += got
        return bytes(view[:count])
    finally:
        view.release()
        BODY_BUFFERS.give(buffer)


def _copy(conn: Connection, client: socket.socket, remaining: int) -> None:
    """Relay ``remaining`` body bytes through one reused buffer."""
    buffer = BODY_BUFFERS.take()
    view = memoryview(buffer)
    recv_into = conn.sock.recv_into
    try:
        while remaining > 0:
            try:
                count = recv_into(view, READ_SIZE if remaining > READ_SIZE else remaining)
            except OSError as exc:
                raise UpstreamError(f"reading body: {exc}", before_response=False) from exc
            if not count:
                raise UpstreamError("body cut short", before_response=False)
            client.sendall(view[:count])
            remaining -= count
    finally:
        view.release()
        BODY_BUFFERS.give(buffer)
