"""The request sent to the session container: target, headers and body framing."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from manager.proxy import headers
from manager.proxy.auth import Identity
from manager.proxy.resolver import ProxyTarget
from manager.proxy.upstream import Connection, ResponseHead, UpstreamError, send_all

MANAGER_TOKEN_PREFIX = "sm_"  # manager.auth.service.TOKEN_PREFIX: every API token starts so
BODY_BUFFER = 64 * 1024  # request bodies up to this size go out in one write with the head
SHORT_BODY = "the client sent less body than it announced"
SESSION_HEADER = "X-SM-Session"  # the session meant; the runner refuses others (smrunner.app)
MISDIRECTED = 421
MISMATCH_LINE = "x-sm-session-mismatch:"
HEADER_BLOCK = "sm.header_block"  # environ: a keep-alive request's header lines, as bytes
HEAD_MEMO = "sm.head_memo"  # environ: its connection's HeadMemo


class HeadMemo:
    """What a keep-alive connection's last request head came to after its request line.

    Those lines follow from the client's header lines (``HEADER_BLOCK``), the connection (its
    address and scheme, fixed), the session, the prefix, the caller's cookie and token use and
    the body's framing: with all of these the same, the lines are the same. The request line,
    and every decision (who calls, which session), are made for each request anew.
    """

    __slots__ = ("key", "lines")

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.lines = b""


class Misdirected(UpstreamError):
    """The container at the route's address serves another session (the engine gave the ended
    session's address to a new container): nothing of it goes to the client."""

    def __init__(self) -> None:
        super().__init__("the container at this address serves another session")


def misdirected(response: ResponseHead) -> bool:
    """True when the runner refused the request as meant for another session."""
    return response.code == MISDIRECTED and any(
        line[:22].lower() == MISMATCH_LINE for line in response.lines
    )


class ShortBody(ConnectionResetError):
    """The client's body ended early: nothing to answer, the server drops the connection."""


def request_head(
    environ: dict[str, Any], target: ProxyTarget, prefix: str, identity: Identity, framing: str
) -> bytes:
    """The request line and headers for the container, with the X-Forwarded-* set."""
    line = headers.request_line(environ["REQUEST_METHOD"], request_target(environ, prefix))
    memo: HeadMemo | None = environ.get(HEAD_MEMO)
    block: bytes | None = environ.get(HEADER_BLOCK)
    if memo is None or block is None:
        return line + _header_lines(environ, target, prefix, identity, framing)
    key = (block, target, prefix, identity.cookie, identity.used_token, framing)
    if key != memo.key:
        memo.lines = _header_lines(environ, target, prefix, identity, framing)
        memo.key = key
    return line + memo.lines


def _header_lines(
    environ: dict[str, Any], target: ProxyTarget, prefix: str, identity: Identity, framing: str
) -> bytes:
    remote = environ.get("REMOTE_ADDR") or ""
    previous = environ.get("HTTP_X_FORWARDED_FOR")
    forwarded = {
        "X-Forwarded-For": f"{previous}, {remote}" if previous else remote,
        "X-Forwarded-Host": environ.get("HTTP_HOST") or _server_host(environ),
        "X-Forwarded-Proto": environ.get("wsgi.url_scheme", "http"),
        "X-Forwarded-Prefix": prefix,
        SESSION_HEADER: target.session_key,
    }
    skip = headers.connection_tokens(environ)
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if (
        identity.used_token
        or authorization[:7].lower() == "bearer "
        and (authorization[7:].lstrip().startswith(MANAGER_TOKEN_PREFIX))
    ):
        skip = skip | {"HTTP_AUTHORIZATION"}  # the manager's tokens are never the script's
    return headers.header_lines(
        environ,
        host=f"{target.host}:{target.port}",
        cookie=identity.cookie,
        forwarded=forwarded,
        framing=framing,
        skip=skip,
    )


def request_body(environ: dict[str, Any]) -> tuple[str, bytes, Iterator[bytes] | None]:
    """Return (framing header line, buffered body, streamed body) for the upstream request."""
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH")
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            length = 0
        if length <= 0:
            return "Content-Length: 0\r\n", b"", None
        framing = f"Content-Length: {length}\r\n"
        if length <= BODY_BUFFER:
            return framing, _read_exactly(stream, length), None
        return framing, b"", _iter_input(stream, length)
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return "Transfer-Encoding: chunked\r\n", b"", _iter_chunked_input(stream)
    if environ["REQUEST_METHOD"] in ("POST", "PUT", "PATCH"):
        return "Content-Length: 0\r\n", b"", None
    return "", b"", None


def _read_exactly(stream: Any, length: int) -> bytes:
    data = stream.read(length)
    if len(data) != length:
        raise ShortBody(errno.ECONNRESET, SHORT_BODY)
    return data


def _iter_input(stream: Any, length: int) -> Iterator[bytes]:
    while length > 0:
        data = stream.read(min(length, BODY_BUFFER))
        if not data:
            raise ShortBody(errno.ECONNRESET, SHORT_BODY)
        length -= len(data)
        yield data


def _iter_chunked_input(stream: Any) -> Iterator[bytes]:
    while True:
        data = stream.read(BODY_BUFFER)
        if not data:
            yield b"0\r\n\r\n"
            return
        yield b"%x\r\n%b\r\n" % (len(data), data)


def send(conn: Connection, head: bytes, body: bytes, stream: Iterator[bytes] | None) -> None:
    """Send head and body upstream; errors reading the client's body pass through as they are."""
    try:
        send_all(conn.sock, head + body if body else head)
    except OSError as exc:
        raise UpstreamError(f"sending the request: {exc}") from exc
    for piece in stream or ():
        try:
            conn.sock.sendall(piece)
        except OSError as exc:
            raise UpstreamError(f"sending the request body: {exc}") from exc


def request_target(environ: dict[str, Any], prefix: str) -> str:
    """The path after the prefix and the query, as the client encoded them."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if raw and raw[0] != "/":
        scheme_end = raw.find("://")
        raw = raw[raw.find("/", scheme_end + 3) :] if scheme_end >= 0 else ""
    raw_path, sep, raw_query = raw.partition("?")
    if raw_path.startswith(prefix + "/"):
        path = raw_path[len(prefix) :]
    else:  # decoded by the server (or percent-encoded ids): encode again
        rest = environ.get("PATH_INFO", "")[len(prefix) - len(environ.get("SCRIPT_NAME", "")) :]
        path = quote(rest.encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _server_host(environ: dict[str, Any]) -> str:
    return f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"


_hosts_cache: dict[tuple[str, int], frozenset[str]] = {}


def upstream_hosts(target: ProxyTarget) -> frozenset[str]:
    """The netlocs under which the container may name itself in an absolute redirect."""
    key = (target.host, target.port)
    hosts = _hosts_cache.get(key)
    if hosts is None:
        names = {f"{target.host}:{target.port}".lower()}
        if target.port == 80:
            names.add(target.host.lower())
        hosts = frozenset(names)
        if len(_hosts_cache) > 4096:
            _hosts_cache.clear()
        _hosts_cache[key] = hosts
    return hosts
