"""The upstream client's framing and connection reuse, over real local sockets."""

from __future__ import annotations

import socket
import threading

import pytest

from manager.proxy import upstream
from manager.proxy.upstream import (
    Connection,
    ConnectionPool,
    UpstreamError,
    iter_chunked,
    iter_length,
    iter_until_close,
    read_head,
)


def test_head_with_body_in_the_same_read(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")
    head = read_head(conn, "GET")
    assert (head.status, head.code, head.length, head.rest) == ("200 OK", 200, 5, b"hello")
    assert head.lines == ["Content-Length: 5", "X-A: b"] and head.keep_alive


def test_interim_responses_are_skipped(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    head = read_head(conn, "POST")
    assert head.code == 204 and head.length == 0


def test_head_request_has_no_body(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    assert read_head(conn, "HEAD").length == 0


def test_chunked_body_is_decoded_as_it_arrives(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
    head = read_head(conn, "GET")
    assert head.chunked and head.keep_alive
    body = iter_chunked(conn, head.rest)
    assert next(body) == b"hel"
    peer.sendall(b"lo\r\n3;ext=1\r\n wo\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert b"".join(body) == b"lo wo"


def test_body_until_close(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.0 200 OK\r\n\r\nsome")
    head = read_head(conn, "GET")
    assert head.length is None and not head.keep_alive
    peer.sendall(b" more")
    peer.shutdown(socket.SHUT_WR)
    assert b"".join(iter_until_close(conn, head.rest)) == b"some more"


def test_cut_short_body_is_an_error(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    head = read_head(conn, "GET")
    peer.close()
    with pytest.raises(UpstreamError):
        b"".join(iter_length(conn, head.rest, head.length or 0))


def test_closed_before_response(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.close()
    with pytest.raises(UpstreamError) as error:
        read_head(conn, "GET")
    assert error.value.before_response


def test_pool_reuses_live_connections_and_drops_closed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upstream, "PEEK_AFTER", 0.0)  # check every reuse, not only idle ones
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []

    def accept() -> None:
        for _ in range(2):
            accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept)
    thread.start()
    pool = ConnectionPool()
    try:
        first = pool.acquire("127.0.0.1", port)
        assert not first.reused
        pool.release(first)
        again = pool.acquire("127.0.0.1", port)
        assert again is first and again.reused
        pool.release(again)
        while not accepted:
            thread.join(0.01)
        accepted[0].close()  # the container drops the idle connection
        fresh = pool.acquire("127.0.0.1", port)
        assert fresh is not first and not fresh.reused
        pool.release(fresh)
    finally:
        thread.join(5)
        pool.clear()
        for sock in accepted:
            sock.close()
        server.close()


def test_refused_connection_is_an_upstream_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UpstreamError):
        ConnectionPool(connect_timeout=1).connect("127.0.0.1", port)
