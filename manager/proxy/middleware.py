"""The WSGI fast path: proxy URLs go straight to the session container, the rest to Flask."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask

from manager import metrics
from manager.proxy import answer, direct, keepalive, outgoing, pages, sessionhost, websocket
from manager.proxy.auth import Authenticator, Caller, Identity, TtlCache
from manager.proxy.headers import UnsafeRequestHeader, protective_headers
from manager.proxy.hostauth import COOKIE_NAME, HostGate
from manager.proxy.hosts import HostRouter, SessionSite
from manager.proxy.resolver import ProxyDenied, ProxyTarget, ProxyUnavailable, Resolver
from manager.proxy.routing import PROXY_PATH
from manager.proxy.upstream import (
    Connection,
    ConnectionPool,
    ResponseHead,
    UnsafeHeader,
    UpstreamError,
    close,
    read_head,
)

log = logging.getLogger("scriptsmanager.proxy")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

RESOLVE_TTL = 1.5  # seconds a resolver answer is reused for the same user and session
DENY_TTL = 1.0
TOUCH_EVERY = 1.0  # seconds between two activity reports for one session
STATUS_KEY = pages.STATUS_KEY
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class ProxyMiddleware:
    """Serve ``/project/<p>/script/<s>/user/<u>/...`` from the session's container.

    Requests are routed by ``Host`` first: a session host (see ``hosts``) is served here and
    nothing of the manager is reachable on it; on the manager's host the proxy path only hands
    out a ticket into the session host (unless SM_SESSION_HOST_MODE=manager), and everything else
    goes to ``wsgi_app`` (Flask) untouched. The resolver is looked up in
    ``app.extensions["sm_proxy_resolver"]`` on each cache miss, so it may be installed late.
    """

    def __init__(
        self,
        app: Flask,
        wsgi_app: WSGIApp,
        *,
        pool: ConnectionPool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.clock = clock
        config = app.config
        self.pool = pool or ConnectionPool(
            connect_timeout=float(config.get("SM_PROXY_CONNECT_TIMEOUT", 5.0)),
            read_timeout=float(config.get("SM_PROXY_READ_TIMEOUT", 300.0)),
        )
        self.auth = Authenticator(app, clock=clock)
        self.router = HostRouter.from_config(config)
        self.gate = HostGate(app, clock=clock)
        self.forbidden_cookies = self.auth.manager_cookies | {COOKIE_NAME}
        self._targets = TtlCache(RESOLVE_TTL)
        self._touched: dict[str, float] = {}
        self._addresses: dict[str, tuple[str, int]] = {}  # session key -> its container's
        self._login_url: str | None = None
        self._counters: dict[int | None, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        site = self.router.site(environ.get("HTTP_HOST", "")) if self.router.isolated else None
        if site is not None:
            began = self.clock()
            result = self.guarded(sessionhost.serve, environ, start_response, site)
            self.observe(environ, began)
        else:
            path: str = environ.get("PATH_INFO", "")
            match = PROXY_PATH.match(path) if path[:9] == "/project/" else None
            if match is None:
                return self.wsgi_app(environ, start_response)
            if self.router.isolated:
                return self.guarded(sessionhost.enter, environ, start_response, match)
            began = self.clock()
            result = self.handle(environ, start_response, match, None)
            self.observe(environ, began)
        if result is direct.ALREADY_HANDLED and not environ.get("SCRIPT_NAME"):
            unreader = keepalive.unreader_of(environ)
            if unreader is not None and "close" not in environ.get("HTTP_CONNECTION", "").lower():
                client = environ["gunicorn.socket"]
                return keepalive.serve_following(self, environ, unreader, client)
        return result

    def observe(self, environ: dict[str, Any], began: float) -> None:
        """Metrics of one proxied request: latency, and the status class it was answered with."""
        metrics.PROXY_LATENCY.observe(self.clock() - began)
        code = environ.get(STATUS_KEY)
        counter = self._counters.get(code)
        if counter is None:  # the labelled child, looked up once per status, not per request
            kind = metrics.status_class(code) if code else "other"
            counter = metrics.PROXY_RESPONSES.labels(kind)
            if len(self._counters) < 1000:  # a container may answer any three digits
                self._counters[code] = counter
        counter.inc()

    def serves_fast(self, environ: dict[str, Any]) -> bool:
        """True when a keep-alive request is a relay this proxy serves without Flask."""
        return (
            not self.router.isolated or self.router.site(environ.get("HTTP_HOST", "")) is not None
        )

    def guarded(
        self,
        handler: Callable[..., Any],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """Run ``handler``, answering the proxy's own refusals with a page (or JSON)."""
        try:
            return handler(self, environ, start_response, *args)
        except ProxyDenied as exc:
            return pages.error(self.app, environ, start_response, exc.status, exc.message)
        except ProxyUnavailable as exc:
            return pages.error(
                self.app,
                environ,
                start_response,
                exc.status,
                exc.message,
                retry_after=exc.retry_after,
            )
        except UnsafeRequestHeader as exc:
            return pages.error(self.app, environ, start_response, 400, str(exc))

    def handle(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        match: re.Match[str],
        site: SessionSite | None = None,
    ) -> Any:
        """Serve one proxy request; returns a WSGI body, or ALREADY_HANDLED when it was
        written on the socket directly."""
        return self.guarded(ProxyMiddleware._proxy, environ, start_response, match, site)

    def resolver(self) -> Resolver:
        resolver: Resolver | None = self.app.extensions.get("sm_proxy_resolver")
        if resolver is None:
            raise ProxyUnavailable(503, "Sessions are not available yet.", retry_after=5)
        return resolver

    def _proxy(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        match: re.Match[str],
        site: SessionSite | None,
    ) -> Any:
        project_id, script_id, url_user_id = map(int, match.group(1, 2, 3))
        if site is None:
            identity = self.auth.identify(environ)
            if identity.caller is None:
                return pages.unauthorized(self.app, environ, start_response, self.login_url())
        else:
            ids = (project_id, script_id, url_user_id)
            if site.ids is not None and ids != site.ids:
                raise ProxyDenied(404, "This host serves another session.")
            identity = sessionhost.identify(self, environ, site, ids)
            if identity.caller is None:
                return sessionhost.back_to_manager(
                    self, environ, start_response, identity, pages.TITLES[401]
                )
        caller = identity.caller
        rest = match.group(4)
        path_prefix = match.string[: match.start(4)] if rest else match.string
        prefix = environ.get("SCRIPT_NAME", "") + path_prefix
        target = self._resolve(caller, project_id, script_id, url_user_id)
        if identity.session_key is not None and target.session_key != identity.session_key:
            # The cookie was made for an earlier session of this script: enter anew.
            return sessionhost.back_to_manager(
                self, environ, start_response, identity, "This session has ended."
            )
        if rest is None:
            query = environ.get("QUERY_STRING", "")
            return pages.redirect(start_response, prefix + "/" + (f"?{query}" if query else ""))
        self.touch(target.session_key)
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            origin = environ.get("HTTP_ORIGIN")
            if origin is not None and origin.lower() != sessionhost.origin_of(environ).lower():
                raise ProxyDenied(403, "This WebSocket may only be opened by the session's pages.")
            return websocket.relay(self, environ, start_response, target, prefix, identity)
        assert caller is not None
        try:
            return self._forward(environ, start_response, target, prefix, identity)
        except UpstreamError as exc:
            log.warning(
                "session %s at %s:%s: %s", target.session_key, target.host, target.port, exc
            )
            self._targets.pop((caller.user_id, caller.is_admin, project_id, script_id, url_user_id))
            if isinstance(exc, outgoing.Misdirected):
                # Another container holds the address now: no route may lead there any more.
                self.forget_session(target.session_key)
            # The cached target may be a session that just ended and was opened again: ask
            # once more, and retry when nothing of the request was sent yet.
            if exc.before_response and not environ.get("sm.proxy_retried"):
                environ["sm.proxy_retried"] = True
                fresh = self._resolve(caller, project_id, script_id, url_user_id)
                bodiless = int(environ.get("CONTENT_LENGTH") or 0) == 0 and not environ.get(
                    "HTTP_TRANSFER_ENCODING"
                )
                stale = identity.session_key not in (None, fresh.session_key)
                if fresh != target and bodiless and not stale:
                    return self._forward(environ, start_response, fresh, prefix, identity)
            return pages.error(self.app, environ, start_response, 502, _failure(exc))

    def _resolve(
        self, caller: Caller, project_id: int, script_id: int, url_user_id: int
    ) -> ProxyTarget:
        key = (caller.user_id, caller.is_admin, project_id, script_id, url_user_id)
        now = self.clock()
        cached = self._targets.get(key, now)
        if cached is not None:
            if isinstance(cached, ProxyDenied):
                raise cached
            return cached
        resolver = self.resolver()
        try:
            target = resolver.resolve(
                user_id=caller.user_id,
                is_admin=caller.is_admin,
                project_id=project_id,
                script_id=script_id,
                url_user_id=url_user_id,
            )
        except ProxyDenied as exc:
            log.info(
                "user %s denied /project/%s/script/%s/user/%s: %s %s",
                caller.user_id,
                project_id,
                script_id,
                url_user_id,
                exc.status,
                exc.message,
            )
            self._targets.put(key, exc, now, DENY_TTL)
            raise
        self._targets.put(key, target, now)
        if len(self._addresses) > 10_000:
            self._addresses.clear()
        self._addresses[target.session_key] = (target.host, target.port)
        return target

    def protection(self, identity: Identity) -> tuple[tuple[str, str], ...]:
        """Headers every proxied response gets: only the manager may frame the session."""
        if not self.router.isolated:
            return protective_headers("'self'")
        return protective_headers(identity.manager_origin or self.router.public_url or None)

    def forget_session(self, session_key: str) -> None:
        """A session is ending: no cached route may lead to its address any more (the engine
        may give that address to the next session started, maybe another user's)."""
        self._targets.drop_values(
            lambda target: getattr(target, "session_key", None) == session_key
        )
        self._touched.pop(session_key, None)
        # Its idle connections are closed now, while a stopping container still answers: left
        # in the pool, each would be closed later, when its packets may reach nobody (see
        # ``upstream.close``).
        address = self._addresses.pop(session_key, None)
        if address is not None:
            self.pool.close_idle(*address)

    def touch(self, session_key: str) -> None:
        now = self.clock()
        if now - self._touched.get(session_key, -TOUCH_EVERY) >= TOUCH_EVERY:
            if len(self._touched) > 10_000:
                self._touched.clear()
            self._touched[session_key] = now
            resolver: Resolver | None = self.app.extensions.get("sm_proxy_resolver")
            if resolver is not None:
                resolver.touch(session_key)

    def login_url(self) -> str:
        if self._login_url is None:
            try:
                with self.app.test_request_context():
                    from flask import url_for

                    self._login_url = url_for("auth.login")
            except Exception:  # no login view registered (a bare test app): the usual place
                self._login_url = "/login"
        return self._login_url

    # -- HTTP ------------------------------------------------------------------------------

    def _forward(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        target: ProxyTarget,
        prefix: str,
        identity: Identity,
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        framing, body, stream = outgoing.request_body(environ)
        head = outgoing.request_head(environ, target, prefix, identity, framing)
        conn, response = self._exchange(target, method, head, body, stream)
        return answer.respond(
            self, environ, conn, response, start_response, target, prefix, identity
        )

    def _exchange(
        self,
        target: ProxyTarget,
        method: str,
        head: bytes,
        body: bytes,
        stream: Iterator[bytes] | None,
    ) -> tuple[Connection, ResponseHead]:
        """Send the request and read the response head, retrying once on a stale connection."""
        while True:
            conn = self.pool.acquire(target.host, target.port)
            try:
                outgoing.send(conn, head, body, stream)
                response = read_head(conn, method)
                if outgoing.misdirected(response):
                    raise outgoing.Misdirected()
                return conn, response
            except UpstreamError as exc:
                close(conn)
                if (
                    conn.reused
                    and not isinstance(exc, outgoing.Misdirected)
                    and exc.before_response
                    and stream is None
                    and (method in IDEMPOTENT or not body)
                ):
                    continue
                raise
            except BaseException:
                close(conn)
                raise


def _failure(exc: UpstreamError) -> str:
    if isinstance(exc, outgoing.Misdirected):
        return "This session's container has gone. Start the script again from its group page."
    if isinstance(exc, UnsafeHeader):
        return "The session's web server sent a header with control characters; it was refused."
    return "The session's web server did not answer."
