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
from urllib.parse import parse_qs, quote

from manager.proxy import pages
from manager.proxy.auth import Identity
from manager.proxy.hostauth import HostClaims
from manager.proxy.hosts import Ids, NoSessionDomain, SessionSite, label_for, prefix_of
from manager.proxy.routing import PROXY_PATH
from manager.proxy.tickets import mint_ticket, redeem_ticket

if TYPE_CHECKING:
    import re

    from manager.proxy.middleware import ProxyMiddleware

log = logging.getLogger("scriptsmanager.proxy")

ENTER_PATH = "/__sm/enter"
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
