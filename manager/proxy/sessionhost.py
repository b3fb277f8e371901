"""Requests on a session host, and the manager's side of entering one.

On the manager's origin, ``/project/<p>/script/<s>/user/<u>/...`` checks the caller (the
manager's cookie or an API token) and the session's owner, mints a single-use ticket and
redirects to the session host's ``/__sm/enter``. There the ticket becomes the host's own cookie
and the browser goes on to the page it asked for. A session host serves nothing but its session's
prefix; without a valid cookie (or API token) a page visit goes back to the manager for a ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from manager.proxy import pages
from manager.proxy.auth import Identity
from manager.proxy.headers import CONTROL as CONTROL_CHARACTERS
from manager.proxy.hostauth import HostClaims
from manager.proxy.hosts import Ids, NoSessionDomain, SessionSite, label_for, prefix_of
from manager.proxy.outgoing import MANAGER_TOKEN_PREFIX
from manager.proxy.resolver import ProxyDenied, ProxyUnavailable
from manager.proxy.routing import PROXY_PATH
from manager.proxy.tickets import mint_ticket, redeem_ticket

if TYPE_CHECKING:
    import re

    from manager.proxy.middleware import ProxyMiddleware

log = logging.getLogger("scriptsmanager.proxy")

ENTER_PATH = "/__sm/enter"
AUTHZ_PATH = "/__sm/authz"  # nginx auth_request / ingress auth-url (SM_PROXY_AUTHZ)
NO_STORE = [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")]


def ids_of_match(match: re.Match[str]) -> Ids:
    project, script, user = (int(x) for x in match.group(1, 2, 3))
    return project, script, user


def origin_of(environ: dict[str, Any]) -> str:
    return f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"


def _redirect(start_response: Callable[..., Any], location: str, *extra: tuple[str, str]) -> Any:
    start_response(
        "302 Found", [("Location", location), ("Content-Length", "0"), *NO_STORE, *extra]
    )
    return []


# -- the manager's origin ----------------------------------------------------------------------


def enter(
    proxy: ProxyMiddleware,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    match: re.Match[str],
) -> Iterable[bytes]:
    """Send a logged-in caller to the session's host with a fresh ticket."""
    identity = proxy.auth.identify(environ)
    caller = identity.caller
    if caller is None:
        return pages.unauthorized(proxy.app, environ, start_response, proxy.login_url())
    ids = ids_of_match(match)
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST", "")
    try:
        origin = proxy.router.session_origin(scheme, host, ids)
    except NoSessionDomain as exc:
        log.warning("session host refused: %s", exc)
        return pages.error(proxy.app, environ, start_response, 503, str(exc))
    rest = match.group(4) or "/"
    query = environ.get("QUERY_STRING", "")
    target = prefix_of(ids) + rest + (f"?{query}" if query else "")
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or _is_upgrade(environ):
        return pages.error(
            proxy.app,
            environ,
            start_response,
            400,
            f"Script interfaces are served from their own host: use {origin}{prefix_of(ids)}/",
        )
    resolver = proxy.resolver()
    project_id, script_id, url_user_id = ids
    session_key = resolver.session_key(
        user_id=caller.user_id,
        is_admin=caller.is_admin,
        project_id=project_id,
        script_id=script_id,
        url_user_id=url_user_id,
    )
    from manager.extensions import db

    with proxy.app.app_context():
        try:
            ticket = mint_ticket(
                db.session,
                user_id=caller.user_id,
                is_admin=caller.is_admin,
                login_id=identity.login_id,
                host_label=label_for(ids),
                session_key=session_key,
                manager_origin=proxy.router.public_url or origin_of(environ),
                ttl=float(proxy.app.config.get("SM_SESSION_TICKET_TTL", 30.0)),
            )
        finally:
            db.session.remove()
    location = f"{origin}{ENTER_PATH}?ticket={ticket}&next={quote(target, safe='')}"
    extra = [("Set-Cookie", identity.refreshed_session)] if identity.refreshed_session else []
    return _redirect(start_response, location, *extra)


def _is_upgrade(environ: dict[str, Any]) -> bool:
    return environ.get("HTTP_UPGRADE", "").lower() == "websocket"


# -- the session host --------------------------------------------------------------------------


def serve(
    proxy: ProxyMiddleware,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    site: SessionSite,
) -> Any:
    """Answer one request on a session host."""
    environ[pages.SESSION_HOST_KEY] = proxy.router.manager_origin(
        environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", "")
    )
    path: str = environ.get("PATH_INFO", "")
    if path == ENTER_PATH:
        return redeem(proxy, environ, start_response, site)
    if path == AUTHZ_PATH and proxy.app.config.get("SM_PROXY_AUTHZ"):
        return authz(proxy, environ, start_response, site)
    match = PROXY_PATH.match(path) if path[:9] == "/project/" else None
    if match is None:
        if path == "/favicon.ico":
            start_response("204 No Content", [("Cache-Control", "max-age=86400")])
            return []
        if path in ("", "/") and site.ids is not None:
            return _redirect(start_response, prefix_of(site.ids) + "/")
        return pages.error(
            proxy.app, environ, start_response, 404, "This host serves one script's interface."
        )
    return proxy.handle(environ, start_response, match, site)


def identify(
    proxy: ProxyMiddleware, environ: dict[str, Any], site: SessionSite, ids: Ids
) -> Identity:
    """Who is calling on a session host: its own cookie, or an API token; never the manager's
    session cookie. The Cookie header forwarded loses every cookie the manager owns."""
    value, kept = proxy.gate.split(environ.get("HTTP_COOKIE", ""), proxy.forbidden_cookies)
    label = label_for(ids)
    claims: HostClaims | None = proxy.gate.claims(value) if value else None
    if claims is not None and claims.label == label:
        caller = proxy.gate.caller(claims.user_id, claims.login_id)
        if caller is not None:
            return Identity(
                caller,
                kept,
                login_id=claims.login_id,
                session_key=claims.session_key,
                manager_origin=claims.manager_origin,
            )
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    origin = proxy.router.manager_origin(
        environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", "")
    )
    if authorization[:7].lower() == "bearer ":
        caller = proxy.auth.caller_for_token(authorization[7:].strip())
        if caller is not None:
            return Identity(caller, kept, used_token=True, manager_origin=origin)
    fallback = claims.manager_origin if claims is not None else origin
    return Identity(None, kept, manager_origin=fallback)


def back_to_manager(
    proxy: ProxyMiddleware,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    identity: Identity,
    message: str,
) -> Any:
    """A visit (GET or HEAD, not asking for JSON) without a valid cookie goes to the manager
    for a ticket; anything else gets 401."""
    origin = identity.manager_origin
    visit = environ.get("REQUEST_METHOD") in ("GET", "HEAD") and not pages.wants_json(environ)
    if origin and visit and not _is_upgrade(environ):
        return _redirect(start_response, origin + pages.full_path(environ))
    return pages.error(proxy.app, environ, start_response, 401, message)


def redeem(
    proxy: ProxyMiddleware,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    site: SessionSite,
) -> Any:
    """``/__sm/enter?ticket=...&next=...``: trade a ticket for this host's cookie."""
    query = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=4)
    ticket = (query.get("ticket") or [""])[0]
    target = (query.get("next") or [""])[0]
    match = PROXY_PATH.match(target.split("?", 1)[0])
    ids = ids_of_match(match) if match else site.ids
    if ids is None or (site.ids is not None and ids != site.ids):
        return pages.error(
            proxy.app, environ, start_response, 400, "This link does not lead to a session."
        )
    if match is None or "\\" in target or any(ord(c) < 0x20 for c in target):
        target = prefix_of(ids) + "/"
    from manager.extensions import db

    with proxy.app.app_context():
        try:
            claims = redeem_ticket(db.session, ticket, label_for(ids))
        finally:
            db.session.remove()
    if claims is None:
        return pages.error(
            proxy.app,
            environ,
            start_response,
            403,
            "This link into the session has expired or was used already. "
            "Open the script again from the manager.",
        )
    if proxy.gate.caller(claims.user_id, claims.login_id) is None:
        return pages.error(proxy.app, environ, start_response, 401, pages.TITLES[401])
    secure = environ.get("wsgi.url_scheme") == "https"
    path = "/" if site.ids is not None else prefix_of(ids) + "/"
    cookie = proxy.gate.set_cookie(
        HostClaims(
            claims.user_id,
            claims.login_id,
            claims.host_label,
            claims.session_key,
            claims.manager_origin,
        ),
        secure=secure,
        path=path,
    )
    return _redirect(start_response, target, ("Set-Cookie", cookie))


# -- the authorisation decision for a proxy in front (nginx auth_request, ingress auth-url) ----


def authz(
    proxy: ProxyMiddleware,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    site: SessionSite,
) -> Any:
    """Decide a request another proxy will carry to the session itself.

    The original request's path comes in ``X-Original-URI`` (its Upgrade header, which a proxy
    does not pass on, in ``X-Original-Upgrade``), its cookies, Origin and Authorization as they
    are. Allowed: 204 with ``X-SM-Upstream`` (``address:port`` of the container),
    ``X-SM-Prefix``, ``X-SM-Session`` (the session meant, which the runner checks),
    ``X-SM-Cookie`` (the Cookie header without the manager's cookies),
    ``X-SM-Authorization`` (empty for the manager's own tokens) and the protective headers to
    add. Anything else (no or a stale cookie, another user's session, a session starting or
    ended): 401 or 403, on which the proxy in front hands the request to the manager, which
    answers it in full (redirects for a ticket, explains). Same checks as the manager's own
    proxy path, in the same order.
    """
    original = environ.get("HTTP_X_ORIGINAL_URI", "")
    path = unquote(original.split("?", 1)[0])
    match = PROXY_PATH.match(path) if path[:9] == "/project/" else None
    if match is None:
        return _decision(start_response, 403, "not a session path")
    ids = ids_of_match(match)
    if site.ids is not None and ids != site.ids:
        return _decision(start_response, 403, "another session's path")
    identity = identify(proxy, environ, site, ids)
    if identity.caller is None:
        return _decision(start_response, 401, "no valid cookie or token")
    project_id, script_id, url_user_id = ids
    try:
        target = proxy._resolve(identity.caller, project_id, script_id, url_user_id)
    except (ProxyDenied, ProxyUnavailable) as exc:
        return _decision(start_response, 403, exc.message)
    if identity.session_key is not None and target.session_key != identity.session_key:
        return _decision(start_response, 401, "the cookie is for an earlier session")
    upgrade = environ.get("HTTP_X_ORIGINAL_UPGRADE") or environ.get("HTTP_UPGRADE", "")
    if upgrade.lower() == "websocket":
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin.lower() != origin_of(environ).lower():
            return _decision(start_response, 403, "a WebSocket from another origin")
    proxy.touch(target.session_key)
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    bearer = authorization[:7].lower() == "bearer "
    if (
        identity.used_token
        or bearer
        and authorization[7:].lstrip().startswith(MANAGER_TOKEN_PREFIX)
    ):
        authorization = ""
    headers = [
        ("X-SM-Upstream", f"{target.host}:{target.port}"),
        ("X-SM-Prefix", prefix_of(ids)),
        ("X-SM-Session", target.session_key),
        ("X-SM-Cookie", identity.cookie),
        ("X-SM-Authorization", authorization),
        *[(f"X-SM-Add-{name}", value) for name, value in proxy.protection(identity)],
        ("Cache-Control", "no-store"),
    ]
    if CONTROL_CHARACTERS.search("".join(value for _, value in headers)):
        return _decision(start_response, 403, "a header with control characters")
    start_response("204 No Content", headers)
    return []


def _decision(start_response: Callable[..., Any], status: int, reason: str) -> Any:
    reasons = {401: "401 Unauthorized", 403: "403 Forbidden"}
    start_response(reasons[status], [("X-SM-Reason", reason), ("Content-Length", "0"), *NO_STORE])
    return []
