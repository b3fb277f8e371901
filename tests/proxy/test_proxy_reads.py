"""The proxy's reads: the head safety check, and receive buffers reused rather than allocated
per read (bounded memory, over real local sockets)."""

from __future__ import annotations

import re
import socket
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manager.proxy import direct, upstream
from manager.proxy.upstream import Connection, UnsafeHeader, read_head, unsafe_head

# The rule as a regular expression (what the proxy used before): unsafe_head must agree.
REFERENCE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n|\n[ \t]")
REFERENCE_NO_FOLDING = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")

# Heads made of what matters to the rule: line ends, white space, controls, Latin-1 text.
PIECES = st.sampled_from(
    ["\r\n", "\r", "\n", " ", "\t", "a", "X-A: b", "\x00", "\x01", "\x0b", "\x1f", "\x7f", "é"]
)
HEADS = st.lists(PIECES, max_size=30).map("".join)


@given(HEADS)
def test_unsafe_head_agrees_with_the_regular_expression(head: str) -> None:
    raw = head.encode("latin-1")
    assert unsafe_head(raw) is bool(REFERENCE.search(head))
    assert unsafe_head(raw, folding=False) is bool(REFERENCE_NO_FOLDING.search(head))


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-A: b\nSet-Cookie: sm_session=evil",  # bare LF
        b"HTTP/1.1 200 OK\r\nX-A: b\rSet-Cookie: sm_host=evil",  # bare CR
        b"HTTP/1.1 200 OK\r\nX-A: b\x01c",  # a control character
        b"HTTP/1.1 200 OK\r\nX-A: b\r\n Set-Cookie: x=1",  # folding
        b"HTTP/1.1 200 OK\r\nX-A: b\r",  # a CR just before the blank line
        b"\nHTTP/1.1 200 OK",  # a LF first
    ],
)
def test_smuggling_heads_are_unsafe(head: bytes) -> None:
    assert unsafe_head(head)


def test_ordinary_heads_are_safe() -> None:
    assert not unsafe_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Tab: a\tb \xe9")
    assert not unsafe_head(b"")


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"


def test_reading_heads_reuses_one_buffer(pair: tuple[Connection, socket.socket]) -> None:
    """Each head read fills a reused buffer: no full-size allocation per read (a ``recv`` of
    256 KiB allocated that much for every response, however small)."""
    conn, peer = pair
    peer.sendall(RESPONSE)
    read_head(conn, "GET")  # the first read may make the buffer
    made = upstream.HEAD_BUFFERS.made
    tracemalloc.start()
    try:
        for _ in range(50):
            peer.sendall(RESPONSE)
            head = read_head(conn, "GET")
            assert head.rest == b"hello"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert upstream.HEAD_BUFFERS.made == made
    assert peak < 16 * 1024, peak


def test_a_head_split_over_reads_and_interim_responses(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-")
    peer.sendall(b"Length: 3\r\n")  # the blank line comes in a later read, split across two
    peer.sendall(b"\r")
    peer.sendall(b"\nabc")
    head = read_head(conn, "GET")
    assert (head.code, head.lines, head.rest) == (200, ["Content-Length: 3"], b"abc")


def test_a_head_larger_than_the_buffer_is_refused(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    peer.sendall(b"HTTP/1.1 200 OK\r\n" + filler * 70)  # 70 KiB, no end of head
    with pytest.raises(upstream.UpstreamError, match="too large"):
        read_head(conn, "GET")


def test_an_unsafe_head_is_refused_whole(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 200 OK\r\nX-A: b\nSet-Cookie: sm_session=evil\r\n\r\n")
    with pytest.raises(UnsafeHeader):
        read_head(conn, "GET")


def test_buffers_keep_a_bounded_number() -> None:
    buffers = upstream.Buffers(16, keep=2)
    taken = [buffers.take() for _ in range(5)]
    for buffer in taken:
        buffers.give(buffer)
    assert buffers.made == 5
    again = [buffers.take() for _ in range(3)]
    assert buffers.made == 6  # two came back from the idle list, one was made
    assert all(len(buffer) == 16 for buffer in again)


class _Recorder:
    """A client socket that records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def test_a_small_body_sent_after_its_head_leaves_in_one_write(
    pair: tuple[Connection, socket.socket],
) -> None:
    """gunicorn writes a small response's head and body separately; the client gets both in
    one write (one wake-up), not two."""
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    head = read_head(conn, "GET")
    assert head.rest == b""
    peer.sendall(b"hello")
    peer.sendall(b" world")
    client = _Recorder()
    reusable = direct.send_response(client, conn, head, [("X-A", "b")], closing=False)  # type: ignore[arg-type]
    assert reusable
    assert client.writes == [b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nhello world"]


def test_a_large_body_is_relayed_as_it_comes(pair: tuple[Connection, socket.socket]) -> None:
    conn, peer = pair
    size = direct.GATHER + 1
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    head = read_head(conn, "GET")
    peer.sendall(b"x" * size)
    client = _Recorder()
    assert direct.send_response(client, conn, head, [], closing=False)  # type: ignore[arg-type]
    assert client.writes[0] == b"HTTP/1.1 200 OK\r\n\r\n" and len(client.writes) > 1
    assert b"".join(client.writes[1:]) == b"x" * size


def test_a_small_body_cut_short_is_an_upstream_error(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, peer = pair
    peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhel")
    head = read_head(conn, "GET")
    peer.close()
    client = _Recorder()
    with pytest.raises(upstream.UpstreamError, match="cut short"):
        direct.send_response(client, conn, head, [], closing=False)  # type: ignore[arg-type]
    assert client.writes == []  # nothing of a broken response reached the client
