"""The upstream client's framing and connection reuse, over real local sockets."""

from __future__ import annotations

import socket
import threading

import pytest
from flask import Flask

from manager.proxy import answer, upstream
from manager.proxy.auth import Caller, Identity
from manager.proxy.middleware import ProxyMiddleware
from manager.proxy.resolver import ProxyTarget
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


def test_the_same_head_again_is_parsed_once(pair: tuple[Connection, socket.socket]) -> None:
    """A container answers with the same head again and again: the connection keeps the last
    parse, and uses it for the same bytes answering the same method, never for other bytes."""
    conn, peer = pair
    same = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n"
    peer.sendall(same + b"hello")
    first = read_head(conn, "GET")
    peer.sendall(same + b"world")
    second = read_head(conn, "GET")
    assert second.lines is first.lines  # not parsed again
    assert (second.code, second.length, second.rest) == (200, 5, b"world")
    peer.sendall(same)
    assert read_head(conn, "HEAD").length == 0  # a HEAD's answer has no body, whatever it says
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-A: c\r\n\r\nhello!")
    other = read_head(conn, "GET")
    assert (other.length, other.lines, other.rest) == (
        6,
        ["Content-Length: 6", "X-A: c"],
        b"hello!",
    )
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\nX-B: c\r\n\r\nhello")
    with pytest.raises(upstream.UnsafeHeader):
        read_head(conn, "GET")  # bytes that differ are checked: a bare LF is refused


def test_long_heads_are_not_kept(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    filler = b"X-Filler: " + b"a" * upstream.REMEMBERED_HEAD + b"\r\n"
    peer.sendall(b"HTTP/1.1 204 No Content\r\n" + filler + b"\r\n")
    assert read_head(conn, "GET").code == 204
    assert conn.last_head is None


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


def _connected_pool(
    pool: ConnectionPool | None = None,
) -> tuple[ConnectionPool, Connection, socket.socket, socket.socket]:
    """A pool holding one idle connection to a new local server; the server's end of it."""
    server = socket.create_server(("127.0.0.1", 0))
    pool = pool or ConnectionPool()
    conn = pool.connect("127.0.0.1", server.getsockname()[1])
    peer = server.accept()[0]
    peer.settimeout(5)
    pool.release(conn)
    return pool, conn, peer, server


def test_a_closed_connection_is_reset_not_left_to_retransmit_its_fin() -> None:
    """One packet, whether the container is still there or not: a FIN to a container that has
    gone is retransmitted for seconds to an address the next session may get."""
    pool, conn, peer, server = _connected_pool()
    try:
        pool.clear()
        with pytest.raises(ConnectionResetError):
            peer.recv(10)  # a FIN would read as b""
    finally:
        peer.close()
        server.close()


def test_closing_an_address_closes_only_its_idle_connections() -> None:
    pool, conn, peer, server = _connected_pool()
    _, other, other_peer, other_server = _connected_pool(pool)  # a second address
    try:
        pool.close_idle("127.0.0.1", server.getsockname()[1])
        with pytest.raises(ConnectionResetError):
            peer.recv(10)
        again = pool.acquire("127.0.0.1", other_server.getsockname()[1])
        assert again is other  # the other address keeps its connection
    finally:
        pool.clear()
        for sock in (peer, server, other_peer, other_server):
            sock.close()


class _OneSession:
    """A resolver with one session, at ``address``."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address

    def resolve(self, **_ids: object) -> ProxyTarget:
        return ProxyTarget(*self.address, session_key="session-1")

    def touch(self, session_key: str) -> None:
        pass


def test_an_ending_session_has_its_idle_connections_closed_while_it_still_answers(
    app: Flask,
) -> None:
    """``forget_session`` runs before the engine stops the container: its pooled connections
    are closed then, not later, when their packets may reach nobody or the next session."""
    pool, conn, peer, server = _connected_pool()
    try:
        proxy = ProxyMiddleware(app, app.wsgi_app, pool=pool)
        app.extensions["sm_proxy_resolver"] = _OneSession(conn.key)
        target = proxy._resolve(Caller(1, False), 1, 2, 1)  # the route a request took
        assert target.session_key == "session-1"
        proxy.forget_session("other-session")
        assert pool.acquire(*conn.key) is conn  # another session's end leaves it
        pool.release(conn)
        proxy.forget_session("session-1")
        with pytest.raises(ConnectionResetError):
            peer.recv(10)
        assert pool.acquire(*conn.key) is not conn
    finally:
        pool.clear()
        peer.close()
        server.close()


def test_a_kept_answer_is_used_only_for_what_made_it(
    app: Flask, pair: tuple[Connection, socket.socket]
) -> None:
    """The head the client got for a container's head is used again only for the same bytes,
    prefix, frame protection, refreshed login and closing; anything else makes it anew, with
    the script's cookies and redirects kept under the prefix each time."""
    conn, peer = pair
    proxy = ProxyMiddleware(app, app.wsgi_app)
    target = ProxyTarget(*conn.key, session_key="session-1")
    prefix = "/project/1/script/2/user/1"
    alice = Identity(Caller(1, False), "", manager_origin="http://localhost:5002")
    sent = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: a=1; Path=/\r\nContent-Length: 0"

    def answered(identity: Identity = alice, path: str = prefix, closing: bool = False) -> bytes:
        peer.sendall(sent + b"\r\n\r\n")
        response = read_head(conn, "GET")
        return answer.client_head(proxy, conn, response, target, path, identity, closing)

    first = answered()
    assert f"Location: {prefix}/next\r\n".encode() in first
    assert f"Set-Cookie: a=1; Path={prefix}/\r\n".encode() in first
    assert b"frame-ancestors http://localhost:5002\r\n" in first
    assert answered() is first  # the same again: made once
    elsewhere = "/project/1/script/2/user/2"
    assert f"Location: {elsewhere}/next\r\n".encode() in answered(path=elsewhere)
    assert answered(closing=True).endswith(b"Connection: close\r\n\r\n")
    refreshed = Identity(alice.caller, "", refreshed_session="session=new; Path=/")
    assert b"Set-Cookie: session=new; Path=/\r\n" in answered(refreshed)
    framed = Identity(alice.caller, "", manager_origin="https://scripts.example.org")
    assert b"frame-ancestors https://scripts.example.org\r\n" in answered(framed)
    assert answered() == first
