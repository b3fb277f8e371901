"""WebSocket frames go out whole: the socket simple-websocket writes to never sends a part.

A socket with a timeout behaves as gevent's does: ``send`` waits until it may write, writes
what the buffer takes and returns. These tests use a real socket pair with a small buffer.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from manager.logs.whole_sends import WholeSends, WholeSocket

FRAME = 1024 * 1024


@pytest.fixture()
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    writer.settimeout(10)  # as under gevent: a send writes what fits and returns
    yield writer, reader
    writer.close()
    reader.close()


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(65536, size - got))
        assert chunk, "the writer closed early"
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def test_a_plain_send_can_write_part_of_a_frame(pair):
    """What goes wrong without the wrapper: the send returns having written a part."""
    writer, _reader = pair
    assert writer.send(b"x" * FRAME) < FRAME


def test_every_byte_of_a_large_frame_is_written(pair):
    writer, reader = pair
    frame = bytes(range(256)) * (FRAME // 256)
    received: list[bytes] = []
    reading = threading.Thread(target=lambda: received.append(read_exactly(reader, FRAME)))
    reading.start()
    assert WholeSocket(writer).send(frame) == FRAME
    reading.join(10)
    assert received == [frame]


def test_frames_from_two_writers_never_interleave(pair):
    writer, reader = pair
    whole = WholeSocket(writer)
    size, count = 64 * 1024, 40
    letters = (b"a", b"b")

    def write(letter: bytes) -> None:
        for _ in range(count):
            whole.send(letter * size)

    writers = [threading.Thread(target=write, args=(letter,)) for letter in letters]
    for thread in writers:
        thread.start()
    frames = [read_exactly(reader, size) for _ in range(count * len(letters))]
    for thread in writers:
        thread.join(10)
    assert all(len(set(frame)) == 1 for frame in frames), "two frames were mixed"
    assert sorted(frame[:1] for frame in frames) == [b"a"] * count + [b"b"] * count


def test_only_the_socketio_path_gets_the_wrapper():
    seen: dict[str, object] = {}

    def app(environ, start_response):
        seen[environ["PATH_INFO"]] = environ.get("gunicorn.socket")
        return []

    middleware = WholeSends(app)
    raw = object()
    for path in ("/socket.io/", "/socket.io", "/socket.iox", "/p1-s2-u3/ws", "/"):
        middleware({"PATH_INFO": path, "gunicorn.socket": raw}, lambda *a: None)
    assert isinstance(seen["/socket.io/"], WholeSocket)
    assert isinstance(seen["/socket.io"], WholeSocket)
    assert seen["/socket.iox"] is raw and seen["/p1-s2-u3/ws"] is raw and seen["/"] is raw


def test_only_the_socketio_path_loses_the_offer_of_compression():
    """Socket.IO's frames go out plain (one deflate per watcher would cost the worker's CPU);
    a session's own WebSocket, through the proxy, keeps whatever it negotiates."""
    offers: dict[str, object] = {}

    def app(environ, start_response):
        offers[environ["PATH_INFO"]] = environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS")
        return []

    middleware = WholeSends(app)
    offer = "permessage-deflate; client_max_window_bits"
    for path in ("/socket.io/", "/p1-s2-u3/ws"):
        middleware({"PATH_INFO": path, "HTTP_SEC_WEBSOCKET_EXTENSIONS": offer}, lambda *a: None)
    assert offers == {"/socket.io/": None, "/p1-s2-u3/ws": offer}
