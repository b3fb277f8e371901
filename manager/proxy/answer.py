"""The container's response as the client gets it: its headers rewritten (cookies and
redirects kept under the prefix, hop-by-hop and CORS grants dropped, frame protection added),
written on the client's socket by the proxy itself where the server allows it, else through
WSGI; the connection to the container goes back to the pool once the body was read whole."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from manager.proxy import direct, outgoing, pages
from manager.proxy.auth import Identity
from manager.proxy.headers import response_headers
from manager.proxy.resolver import ProxyTarget
from manager.proxy.upstream import (
    REMEMBERED_HEAD,
    Connection,
    ResponseHead,
    UpstreamError,
    close,
    iter_chunked,
    iter_length,
    iter_until_close,
)

if TYPE_CHECKING:
    from manager.proxy.middleware import ProxyMiddleware

log = logging.getLogger("scriptsmanager.proxy")

BROKE_OFF = "the session's response broke off"
STATUS_KEY = pages.STATUS_KEY


def respond(
    proxy: ProxyMiddleware,
    environ: dict[str, Any],
    conn: Connection,
    response: ResponseHead,
    start_response: Callable[..., Any],
    target: ProxyTarget,
    prefix: str,
    identity: Identity,
) -> Iterable[bytes]:
    """Answer the client with the container's response (directly on the socket when the
    server allows it); the connection is released or closed once the body was read."""
    environ[STATUS_KEY] = response.code
    client = direct.client_socket(environ, response)
    if client is not None:
        closing = "close" in environ.get("HTTP_CONNECTION", "").lower()
        head = client_head(proxy, conn, response, target, prefix, identity, closing)
        return _respond_direct(proxy, client, conn, response, head)
    headers = _headers(proxy, response, target, prefix, identity, keep_date=False)
    if response.length is None:  # a Content-Length beside chunked framing is not the body's
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(response.status, headers)
    length = response.length
    if length is not None and len(response.rest) == length:
        _give_back(proxy, conn, response, whole=True)
        return [response.rest] if length else []
    return _relay(proxy, conn, response)


def _headers(
    proxy: ProxyMiddleware,
    response: ResponseHead,
    target: ProxyTarget,
    prefix: str,
    identity: Identity,
    *,
    keep_date: bool,
) -> list[tuple[str, str]]:
    """The response's headers as the client gets them (see ``response_headers``)."""
    headers = response_headers(
        response.lines,
        prefix=prefix,
        upstream_hosts=outgoing.upstream_hosts(target),
        forbidden_cookies=proxy.forbidden_cookies,
        keep_date=keep_date,
        protect=proxy.protection(identity),
    )
    if identity.refreshed_session:
        headers.append(("Set-Cookie", identity.refreshed_session))
    return headers


def client_head(
    proxy: ProxyMiddleware,
    conn: Connection,
    response: ResponseHead,
    target: ProxyTarget,
    prefix: str,
    identity: Identity,
    closing: bool,
) -> bytes:
    """The head the client gets, written by the proxy itself; the one made for this
    connection's last response when the container sent the same head again, for the same
    prefix, frame protection and refreshed login (the container's address is the
    connection's own)."""
    protect = proxy.protection(identity)
    key = (response.raw, prefix, protect, identity.refreshed_session, closing)
    answer = conn.answer
    if answer is not None and answer[0] == key:
        return answer[1]
    headers = _headers(proxy, response, target, prefix, identity, keep_date=True)
    head = direct.response_head(response.status, headers, closing=closing)
    if len(response.raw) <= REMEMBERED_HEAD:
        conn.answer = (key, head)
    return head


def _respond_direct(
    proxy: ProxyMiddleware, client: Any, conn: Connection, response: ResponseHead, head: bytes
) -> Any:
    whole = False
    try:
        whole = direct.send_head(client, conn, response, head)
    except UpstreamError as exc:
        raise _broke_off(conn, exc) from exc
    finally:
        _give_back(proxy, conn, response, whole=whole)
    return direct.ALREADY_HANDLED


def _relay(proxy: ProxyMiddleware, conn: Connection, response: ResponseHead) -> Iterator[bytes]:
    """Stream the rest of the body; the connection goes back to the pool only when whole."""
    whole = False
    try:
        if response.chunked:
            yield from iter_chunked(conn, response.rest)
        elif response.length is None:
            yield from iter_until_close(conn, response.rest)
        else:
            yield from iter_length(conn, response.rest, response.length)
        whole = True
    except UpstreamError as exc:
        raise _broke_off(conn, exc) from exc
    finally:
        _give_back(proxy, conn, response, whole=whole)


def _give_back(
    proxy: ProxyMiddleware, conn: Connection, response: ResponseHead, *, whole: bool
) -> None:
    """Pool the connection when the response was read whole and it may carry another; else
    close it (a part left unread would be taken for the next response)."""
    if whole and response.keep_alive:
        proxy.pool.release(conn)
    else:
        close(conn)


def _broke_off(conn: Connection, exc: UpstreamError) -> ConnectionResetError:
    """What aborts the client's connection when the container's response broke off, so the
    browser does not take a cut body as whole."""
    log.warning("response from %s:%s broke off: %s", *conn.key, exc)
    return ConnectionResetError(errno.ECONNRESET, BROKE_OFF)
