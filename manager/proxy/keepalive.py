"""Serve the next proxy requests of a keep-alive connection without gunicorn's request parser.

After a proxied request answered directly (see ``direct``), the proxy reads the next request on
the same connection itself. While requests are simple proxy requests (HTTP/1.1, a proxy path, no
upgrade, no ``Expect``, a body of known length) it serves them with a lean parser; anything else
is handed back to gunicorn (its bytes pushed back into gunicorn's reader) with
``ALREADY_HANDLED``, and so is a connection idle for a few seconds.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from manager.proxy import direct, outgoing
from manager.proxy.routing import PROXY_PATH
from manager.proxy.upstream import unsafe_head
from manager.proxy.waits import Reader
from manager.security import FORWARDED_FIX

if TYPE_CHECKING:
    from manager.proxy.middleware import ProxyMiddleware

KEEPALIVE = 30.0  # seconds a client connection may stay idle (and a write may block), as gunicorn
MAX_HEAD = 64 * 1024
MAX_DRAIN = 1024 * 1024  # unread request body we skip rather than close the connection
RECV_SIZE = 8192  # a connection's receive buffer in this loop (gunicorn reads as much at once)
REMEMBERED_BLOCK = 16 * 1024  # longer header lines are parsed each time, not kept between


class HandBack(Exception):
    """The next request is not ours to serve fast."""


def unreader_of(environ: dict[str, Any]) -> Any:
    """gunicorn's reader for this connection when nothing is buffered in it, else None."""
    body = environ.get("wsgi.input")
    unreader = getattr(getattr(body, "reader", None), "unreader", None)
    if unreader is None or not hasattr(unreader, "unread") or unreader.buf.getvalue():
        return None
    return unreader


def serve_following(
    proxy: ProxyMiddleware, first: dict[str, Any], unreader: Any, client: socket.socket
) -> Any:
    """Serve this connection's next proxy requests; return ALREADY_HANDLED to give it back.

    Raises StopIteration when the connection is to close (gunicorn closes it), OSError when the
    client went away.
    """
    timeout = client.gettimeout()
    client.settimeout(KEEPALIVE)
    reader = _RequestReader(first, client, proxy)
    try:
        while True:
            try:
                request = reader.next_request()
            except HandBack:
                unreader.unread(reader.buffer)
                return direct.ALREADY_HANDLED
            except TimeoutError:
                raise StopIteration from None  # idle past the keep-alive time: close
            if request is None:
                raise StopIteration  # the client closed the connection
            environ, match = request
            writer = _Writer(client, environ)
            site = proxy.router.site(environ.get("HTTP_HOST", ""))
            began = proxy.clock()
            result = proxy.handle(environ, writer.start_response, match, site)
            proxy.observe(environ, began)
            if result is not direct.ALREADY_HANDLED:
                writer.write_all(result)
            body: _Body = environ["wsgi.input"]
            if "close" in environ.get("HTTP_CONNECTION", "").lower() or not body.drain():
                raise StopIteration
            reader.buffer = body.leftover
    finally:
        client.settimeout(timeout)


class _RequestReader:
    """Reads request heads off the socket, keeping what was read past them."""

    def __init__(
        self, first: dict[str, Any], client: socket.socket, proxy: ProxyMiddleware
    ) -> None:
        # Behind a trusted proxy (nginx reuses one connection for many clients' requests),
        # each request's X-Forwarded-For and -Proto are read anew from the connection's own
        # peer and scheme, as the trusted-proxy layer does for the requests gunicorn parses.
        self.fix = proxy.app.extensions.get(FORWARDED_FIX)
        peer = first.get("werkzeug.proxy_fix.orig") or first
        self.client = client
        self.reads = Reader(client, KEEPALIVE)
        self.proxy = proxy
        self.buffer = b""
        self._block: bytes | None = None  # the last request's header lines, and their entries
        self._entries: dict[str, str] = {}
        # Reused for every read of this connection: a new bytes object per recv would be a
        # full-size allocation shrunk to what arrived, each request.
        self._view = memoryview(bytearray(RECV_SIZE))
        self.base = {
            "wsgi.version": (1, 0),
            "wsgi.errors": first.get("wsgi.errors"),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "SERVER_SOFTWARE": first.get("SERVER_SOFTWARE", ""),
            "SCRIPT_NAME": "",
            "SERVER_NAME": first["SERVER_NAME"],
            "SERVER_PORT": first["SERVER_PORT"],
            "REMOTE_ADDR": peer.get("REMOTE_ADDR", ""),
            "REMOTE_PORT": first.get("REMOTE_PORT", ""),
            "wsgi.url_scheme": peer.get("wsgi.url_scheme") or first["wsgi.url_scheme"],
            "gunicorn.socket": client,
            outgoing.HEAD_MEMO: outgoing.HeadMemo(),  # shared by this connection's requests
        }

    def next_request(self) -> tuple[dict[str, Any], re.Match[str]] | None:
        """Parse the next request head; None at a clean end of the connection.

        Raises HandBack when it is not a simple proxy request (``buffer`` keeps its bytes).
        """
        end = self.buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(self.buffer) > MAX_HEAD:
                raise HandBack
            # A client that needed waiting for sends its next request after the answer: waiting
            # first spares the system call that would find nothing (and its exception).
            count = self.reads.recv_into(self._view, wait_first=self.reads.waited)
            if not count:
                if self.buffer:
                    raise HandBack  # gunicorn answers a truncated request
                return None
            self.buffer += self._view[:count]
            end = self.buffer.find(b"\r\n\r\n")
        raw = self.buffer[:end]
        line_end = raw.find(b"\r\n")
        line, block = (raw, b"") if line_end < 0 else (raw[:line_end], raw[line_end + 2 :])
        if unsafe_head(line, folding=False):
            raise HandBack  # bare CR/LF or control characters: gunicorn refuses them
        request_line = line.decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target, _, version = rest.partition(" ")
        if version != "HTTP/1.1" or target[:9] != "/project/" or not method.isalpha():
            raise HandBack
        path, _, query = target.partition("?")
        path_info = unquote_to_bytes(path).decode("latin-1") if "%" in path else path
        match = PROXY_PATH.match(path_info)
        if match is None:
            raise HandBack
        fields = self._fields(block)
        environ = dict(self.base)
        environ.update(
            REQUEST_METHOD=method,
            PATH_INFO=path_info,
            QUERY_STRING=query,
            RAW_URI=target,
            SERVER_PROTOCOL=version,
        )
        environ.update(fields)
        if self.fix is not None:
            self.fix(environ, None)
        if fields is self._entries:  # lines kept: what the container is sent may be kept too
            environ[outgoing.HEADER_BLOCK] = self._block
        if not self.proxy.serves_fast(environ):
            raise HandBack  # the manager's host: a ticket redirect or a page, not a relay
        length = environ.get("CONTENT_LENGTH", "0")
        if not length.isdigit():
            raise HandBack
        environ["wsgi.input"] = _Body(self.client, self.buffer[end + 4 :], int(length))
        self.buffer = b""
        return environ, match

    def _fields(self, block: bytes) -> dict[str, str]:
        """The environ entries of a request's header lines (HandBack on anything unusual).

        A client sends the same header lines with request after request (a browser's Cookie,
        User-Agent and Accept, an API client's token): the last block's entries are kept and
        used again for the same bytes, unchecked and unparsed a second time.
        """
        if block == self._block:
            return self._entries
        if unsafe_head(block, folding=False):
            raise HandBack  # bare CR/LF or control characters: gunicorn refuses them
        entries: dict[str, str] = {}
        _add_headers(entries, block.decode("latin-1"))
        if len(block) <= REMEMBERED_BLOCK:
            self._block, self._entries = block, entries
        return entries


def _add_headers(environ: dict[str, str], header_block: str) -> None:
    """Put header lines into ``environ`` as a WSGI server would; HandBack on anything unusual."""
    if not header_block:
        return
    for line in header_block.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not name or "_" in name or " " in name or "\t" in name:
            raise HandBack  # odd header: gunicorn decides
        key = name.upper().replace("-", "_")
        value = value.strip(" \t")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in environ:
                raise HandBack
        elif key in ("TRANSFER_ENCODING", "EXPECT", "UPGRADE"):
            raise HandBack
        else:
            key = "HTTP_" + key
            if key in environ:
                value = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ','}{value}"
        environ[key] = value


class _Body:
    """A request body of known length, read from what was buffered, then from the socket."""

    def __init__(self, sock: socket.socket, buffered: bytes, length: int) -> None:
        self.sock = sock
        self.buffered = buffered[:length]
        self.leftover = buffered[length:]  # the start of the next request, if pipelined
        self.remaining = length - len(self.buffered)

    def read(self, size: int = -1) -> bytes:
        out = self.buffered
        if size < 0:
            size = len(out) + self.remaining
        if len(out) >= size:
            self.buffered = out[size:]
            return out[:size]
        self.buffered = b""
        while len(out) < size and self.remaining > 0:
            data = self.sock.recv(min(size - len(out), self.remaining, 1 << 20))
            if not data:
                break
            self.remaining -= len(data)
            out += data
        return out

    def drain(self) -> bool:
        """Skip what the handler did not read; False when too much is left to skip."""
        if self.remaining + len(self.buffered) > MAX_DRAIN:
            return False
        while self.read(65536):
            pass
        return True


class _Writer:
    """Write a WSGI response (status, headers, body) on the raw socket, HTTP/1.1."""

    def __init__(self, sock: socket.socket, environ: dict[str, Any]) -> None:
        self.sock = sock
        self.head_only = environ["REQUEST_METHOD"] == "HEAD"
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        self.status, self.headers = status, headers
        return self._write_unsupported

    def _write_unsupported(self, data: bytes) -> None:
        raise NotImplementedError("the proxy never uses write()")

    def write_all(self, body: Iterable[bytes]) -> None:
        code = int(self.status[:3])
        has_length = any(name.lower() == "content-length" for name, _ in self.headers)
        no_body = self.head_only or code in (204, 304) or code < 200
        chunked = not has_length and not no_body
        lines = [f"HTTP/1.1 {self.status}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in self.headers]
        if chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        lines.append("\r\n")
        pending = "".join(lines).encode("latin-1")
        try:
            for piece in body:
                if no_body or not piece:
                    continue
                if chunked:
                    piece = b"%x\r\n%b\r\n" % (len(piece), piece)
                self.sock.sendall(pending + piece if pending else piece)
                pending = b""
            self.sock.sendall(pending + b"0\r\n\r\n" if chunked else pending)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
