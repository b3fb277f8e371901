"""The reverse proxy to session containers: ``/project/<p>/script/<s>/user/<u>/<path>``.

``init_app(app)`` wraps ``app.wsgi_app`` with a WSGI fast path for proxy URLs; the sessions service
installs its resolver in ``app.extensions["sm_proxy_resolver"]`` (see ``resolver.Resolver``).
"""

from __future__ import annotations

from flask import Blueprint, Flask

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


def init_app(app: Flask) -> ProxyMiddleware:
    """Put the proxy in front of the app's Flask dispatch and register its templates."""
    app.register_blueprint(Blueprint("proxy_pages", __name__, template_folder="templates"))
    middleware = ProxyMiddleware(app, app.wsgi_app)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    app.extensions["sm_proxy"] = middleware
    return middleware
