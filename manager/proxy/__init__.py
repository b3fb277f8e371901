"""The reverse proxy to session containers: ``/project/<p>/script/<s>/user/<u>/<path>``.

``init_app(app)`` wraps ``app.wsgi_app`` with a WSGI fast path for proxy URLs; the sessions service
installs its resolver in ``app.extensions["sm_proxy_resolver"]`` (see ``resolver.Resolver``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app
from flask_login import user_logged_out

from manager.proxy.links import MANAGER_MODE_RISK
from manager.proxy.middleware import ProxyMiddleware
from manager.proxy.resolver import (
    ProxyDenied,
    ProxyTarget,
    ProxyUnavailable,
    Resolver,
    StaticResolver,
    StaticSession,
)

__all__ = [
    "ProxyDenied",
    "ProxyMiddleware",
    "ProxyTarget",
    "ProxyUnavailable",
    "Resolver",
    "StaticResolver",
    "StaticSession",
    "init_app",
]

RESOLVER_KEY = "sm_proxy_resolver"
log = logging.getLogger("scriptsmanager.proxy")


def init_app(app: Flask) -> ProxyMiddleware:
    """Put the proxy in front of the app's Flask dispatch and register its templates."""
    app.register_blueprint(Blueprint("proxy_pages", __name__, template_folder="templates"))
    middleware = ProxyMiddleware(app, app.wsgi_app)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    app.extensions["sm_proxy"] = middleware
    # A logout in this process takes effect on session hosts at once (other processes see the
    # revoked login within a second or two).
    user_logged_out.connect(middleware.gate.forget, app)
    user_logged_out.connect(middleware.auth.forget, app)
    if not middleware.router.isolated:
        log.warning("SECURITY: %s", MANAGER_MODE_RISK)
    elif middleware.router.domain and not middleware.router.public_url:
        log.warning(
            "SM_SESSION_DOMAIN is set but SM_PUBLIC_URL is not: session hosts cannot send "
            "visitors back to the manager to log in."
        )
    return middleware


def forget_session(session_key: str) -> None:
    """Drop this process's cached routes to a session that is ending (see
    ``ProxyMiddleware.forget_session``); other processes' expire within ``RESOLVE_TTL``."""
    try:
        middleware = current_app.extensions.get("sm_proxy")
    except RuntimeError:  # no app: nothing cached here
        return
    if middleware is not None:
        middleware.forget_session(session_key)


def serve_session_hosts_first(app: Flask) -> None:
    """Route session hosts to the proxy before any other WSGI layer (Socket.IO wraps the proxy
    and would otherwise answer ``/socket.io/`` on a session host). Call after the layers that
    wrap ``app.wsgi_app``."""
    middleware: ProxyMiddleware = app.extensions["sm_proxy"]
    inner = app.wsgi_app
    if not middleware.router.isolated:
        return

    def route(environ: dict[str, Any], start_response: Any) -> Any:
        if middleware.router.site(environ.get("HTTP_HOST", "")) is not None:
            return middleware(environ, start_response)
        return inner(environ, start_response)

    app.wsgi_app = route  # type: ignore[method-assign]
