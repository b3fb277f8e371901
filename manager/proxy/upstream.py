"""A lean HTTP/1.1 client for session containers: pooled keep-alive sockets, large-chunk reads.

Written against the ``socket`` module, so it is cooperative under gevent's monkey patching (the
manager's gunicorn worker) and plain blocking under threads (the development server).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from manager.proxy.waits import Reader

READ_SIZE = 256 * 1024  # large reads: fewer trips through Python per MiB relayed
MAX_HEAD = 64 * 1024
REMEMBERED_HEAD = 4096  # longer heads are not kept for reuse (see Connection.last_head)
PEEK_AFTER = 0.5  # seconds idle after which a pooled connection is checked before reuse


class UpstreamError(Exception):
    """The container could not be reached, or broke the exchange (refused, reset, timeout)."""

    def __init__(self, message: str, *, before_response: bool = True) -> None:
        super().__init__(message)
        self.before_response = before_response


@dataclass
class Connection:
    """One socket to a container, with bytes read past the last response."""

    sock: socket.socket
    key: tuple[str, int]
    reused: bool = False
    idle_since: float = field(default_factory=time.monotonic)
    reader: Reader = field(init=False, repr=False)  # reads bounded by the socket's timeout
    # A container sends the same head again and again (an API's JSON, a polled page): the
    # last one's parse, and the head the client got for it, are kept and used again.
    last_head: ResponseHead | None = field(default=None, init=False, repr=False)
    answer: tuple[tuple[Any, ...], bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.reader = Reader(self.sock, self.sock.gettimeout())


class ConnectionPool:
    """Idle keep-alive connections per (host, port), most recently used first."""

    def __init__(
        self,
        *,
        max_idle: int = 64,
        idle_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 300.0,
    ) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._lock = threading.Lock()

    def connect(self, host: str, port: int) -> Connection:
        """Open a new connection; raises UpstreamError when the container does not answer."""
        try:
            sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {host}:{port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.read_timeout)
        return Connection(sock, (host, port))

    def acquire(self, host: str, port: int) -> Connection:
        """A live idle connection when there is one, else a new one."""
        key = (host, port)
        now = time.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self.connect(host, port)
            idle_for = now - conn.idle_since
            # Servers close idle keep-alive connections after seconds, not milliseconds: only a
            # connection idle for a while is checked (a failed reuse is retried anyway).
            if idle_for < PEEK_AFTER or (idle_for < self.idle_timeout and _still_open(conn.sock)):
                conn.reused = True
                return conn
            close(conn)

    def release(self, conn: Connection) -> None:
        """Return a connection whose last response was read completely."""
        conn.idle_since = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        close(conn)

    def close_idle(self, host: str, port: int) -> None:
        """Close the idle connections to ``host:port`` (its session is ending)."""
        with self._lock:
            conns = self._idle.pop((host, port), [])
        for conn in conns:
            close(conn)

    def clear(self) -> None:
        """Close every idle connection."""
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            close(conn)


def send_all(sock: socket.socket, data: bytes) -> None:
    """``sendall`` with a shortcut for data the socket takes in one call (the usual case)."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


# SO_LINGER on, 0 seconds: close() resets the connection instead of sending a FIN.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


def close(conn: Connection) -> None:
    """Close a connection the proxy is done with, by a reset.

    A FIN to a container that has gone is retransmitted for seconds, each time to an address
    the engine gives to the next session started: the host then asks for that address (ARP)
    while nobody holds it, and packets to the next session wait for its next ask, up to a
    second. One reset is one packet, and whatever either side had to say was said.
    """
    with contextlib.suppress(OSError):
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    with contextlib.suppress(OSError):
        conn.sock.close()


def _still_open(sock: socket.socket) -> bool:
    """False when the peer closed an idle connection (or sent something unasked)."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False  # EOF, or stray bytes: either way not reusable


@dataclass
class ResponseHead:
    """Status and raw header lines of an upstream response, and the body bytes read with them."""

    status: str  # "200 OK"
    code: int
    lines: list[str]  # shared by the responses with the same head (Connection.last_head): read only
    rest: bytes
    length: int | None  # Content-Length; None with chunked or read-until-close
    chunked: bool
    keep_alive: bool
    raw: bytes = b""  # the head as received, without its blank line
    method: str = "GET"  # of the request it answers

    def with_rest(self, rest: bytes) -> ResponseHead:
        """The same head, followed by other body bytes."""
        return ResponseHead(
            self.status, self.code, self.lines, rest, self.length, self.chunked,
            self.keep_alive, self.raw, self.method,
        )  # fmt: skip


class UnsafeHeader(UpstreamError):
    """The session's response head holds control characters; it is refused whole."""

    def __init__(self) -> None:
        super().__init__(
            "the session's response has a header with control characters", before_response=False
        )


# Every byte but the control characters a head may not hold (all but tab, CR and LF).
_NOT_CONTROL = bytes(b for b in range(256) if not (b < 0x20 and b not in b"\t\r\n" or b == 0x7F))


def unsafe_head(raw: bytes, *, folding: bool = True) -> bool:
    """True when a message head (up to, not including, its blank line) could smuggle a header
    past the proxy: a control character other than a tab, a CR or LF other than in a CRLF
    line end, or (``folding``) a line starting with white space (obsolete folding).

    Bytes methods, not a regular expression: a few passes at C speed instead of an
    alternation tried at every byte (the regex took 5-10 us a head, the proxy's largest
    single cost per request).
    """
    if raw.translate(None, _NOT_CONTROL):
        return True
    line_ends = raw.count(b"\r\n")
    if raw.count(b"\r") != line_ends or raw.count(b"\n") != line_ends:
        return True
    return folding and (b"\n " in raw or b"\n\t" in raw)


class Buffers:
    """Receive buffers of one size, reused: a read fills one with ``recv_into`` and copies out
    only the bytes it got, instead of allocating (and shrinking) a new full-size bytes object
    per ``recv``. Such short-lived large blocks between longer-lived small ones are what
    fragments the C heap of a long-running process; reuse also saves the allocation's time.

    At most ``keep`` idle buffers are kept; more are made when more readers run at once.
    """

    def __init__(self, size: int, keep: int = 16) -> None:
        self.size = size
        self.keep = keep
        self.made = 0  # buffers allocated so far (tests check that reads reuse them)
        self._idle: list[bytearray] = []

    def take(self) -> bytearray:
        try:  # one call, not a test then a pop: the development server reads from threads
            return self._idle.pop()
        except IndexError:
            self.made += 1
            return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        if len(self._idle) < self.keep:
            self._idle.append(buffer)


HEAD_BUFFERS = Buffers(MAX_HEAD)  # response heads (and the first body bytes read with them)
BODY_BUFFERS = Buffers(READ_SIZE)  # bodies relayed straight to the client (``direct``)


def read_head(conn: Connection, method: str) -> ResponseHead:
    """Read one response head (skipping 1xx interim responses other than 101)."""
    buffer = HEAD_BUFFERS.take()
    view = memoryview(buffer)
    try:
        return _read_head(conn, view, method)
    finally:
        view.release()
        HEAD_BUFFERS.give(buffer)


def _read_head(conn: Connection, view: memoryview, method: str) -> ResponseHead:
    reader = conn.reader
    buffer = view.obj
    assert isinstance(buffer, bytearray)
    filled = 0  # bytes of the buffer holding data
    searched = 0  # where the search for the blank line resumes
    got_any = False
    while True:
        end = buffer.find(b"\r\n\r\n", searched, filled)
        if end < 0:
            if filled == len(buffer):
                raise UpstreamError("response head too large", before_response=False)
            try:
                # Right after the request went out the response is not there yet: wait first.
                count = reader.recv_into(view[filled:], wait_first=not got_any)
            except OSError as exc:
                raise UpstreamError(
                    f"reading response: {exc}", before_response=not got_any
                ) from exc
            if not count:
                raise UpstreamError(
                    "connection closed before a response", before_response=not got_any
                )
            got_any = True
            searched = max(0, filled - 3)
            filled += count
            continue
        raw = bytes(view[:end])
        rest = bytes(view[end + 4 : filled])
        last = conn.last_head
        if last is not None and last.raw == raw and last.method == method:
            return last.with_rest(rest)
        if unsafe_head(raw):
            raise UnsafeHeader()
        text = raw.decode("latin-1")
        status_line, _, header_block = text.partition("\r\n")
        version, _, status = status_line.partition(" ")
        try:
            code = int(status[:3])
        except ValueError:
            raise UpstreamError(f"bad status line {status_line!r}", before_response=False) from None
        if 100 <= code < 200 and code != 101:
            view[: len(rest)] = rest  # the next response's bytes, read with this one
            filled, searched = len(rest), 0
            continue
        lines = header_block.split("\r\n") if header_block else []
        head = _head(status, code, version, lines, rest, method, raw)
        if len(raw) <= REMEMBERED_HEAD:
            conn.last_head = head.with_rest(b"")
        return head


def _head(
    status: str,
    code: int,
    version: str,
    lines: list[str],
    rest: bytes,
    method: str,
    raw: bytes,
) -> ResponseHead:
    length: int | None = None
    chunked = False
    keep_alive = version == "HTTP/1.1"
    for line in lines:
        if line[:1] not in "cCtT":
            continue  # not Content-Length, Connection or Transfer-Encoding (most lines)
        name, _, value = line.partition(":")
        lowered = name.strip().lower()
        if lowered == "content-length":
            try:
                length = int(value)
            except ValueError:
                raise UpstreamError("bad Content-Length", before_response=False) from None
        elif lowered == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif lowered == "connection":
            tokens = value.lower()
            if "close" in tokens:
                keep_alive = False
            elif "keep-alive" in tokens:
                keep_alive = True
    if method == "HEAD" or code in (204, 304) or code < 200:
        length, chunked = 0, False
    elif chunked:
        length = None
    if length is None and not chunked:
        keep_alive = False  # body ends when the connection closes
    return ResponseHead(status, code, lines, rest, length, chunked, keep_alive, raw, method)


def iter_length(conn: Connection, rest: bytes, length: int) -> Iterator[bytes]:
    """Yield exactly ``length`` body bytes, as they arrive."""
    if rest:
        if len(rest) > length:
            raise UpstreamError("more bytes than Content-Length", before_response=False)
        length -= len(rest)
        yield rest
    recv = conn.sock.recv
    while length > 0:
        try:
            data = recv(READ_SIZE if length > READ_SIZE else length)
        except OSError as exc:
            raise UpstreamError(f"reading body: {exc}", before_response=False) from exc
        if not data:
            raise UpstreamError("body cut short", before_response=False)
        length -= len(data)
        yield data


def iter_until_close(conn: Connection, rest: bytes) -> Iterator[bytes]:
    """Yield body bytes until the container closes the connection."""
    if rest:
        yield rest
    while True:
        try:
            data = conn.sock.recv(READ_SIZE)
        except OSError as exc:
            raise UpstreamError(f"reading body: {exc}", before_response=False) from exc
        if not data:
            return
        yield data


def iter_chunked(conn: Connection, rest: bytes) -> Iterator[bytes]:
    """Decode a chunked body, yielding chunk data as soon as it arrives."""
    buf = rest
    recv = conn.sock.recv

    def more() -> bytes:
        try:
            data = recv(READ_SIZE)
        except OSError as exc:
            raise UpstreamError(f"reading body: {exc}", before_response=False) from exc
        if not data:
            raise UpstreamError("chunked body cut short", before_response=False)
        return data

    while True:
        end = buf.find(b"\r\n")
        while end < 0:
            if len(buf) > MAX_HEAD:
                raise UpstreamError("bad chunk header", before_response=False)
            buf += more()
            end = buf.find(b"\r\n")
        try:
            size = int(buf[:end].split(b";", 1)[0], 16)
        except ValueError:
            raise UpstreamError("bad chunk size", before_response=False) from None
        buf = buf[end + 2 :]
        if size == 0:
            # Trailers (ignored) end with an empty line.
            while not (buf.startswith(b"\r\n") or b"\r\n\r\n" in buf):
                buf += more()
            return
        while size > 0:
            if not buf:
                buf = more()
            piece = buf[:size]
            buf = buf[len(piece) :]
            size -= len(piece)
            yield piece
        while len(buf) < 2:
            buf += more()
        buf = buf[2:]  # the CRLF after the chunk data
