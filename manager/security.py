"""The manager's own response headers, trusted reverse proxies and the session cookie's Secure flag.

Only the manager's Flask responses get these headers (an ``after_request`` hook): the reverse
proxy to session containers serves script pages itself and sets its own.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from manager.settings import ConfigError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# app.extensions: the trusted-proxy fix alone, ``fix(environ, None)`` rewriting a request's
# environ in place; for code that reads requests past the WSGI layers (the session proxy's
# keep-alive loop). Absent when no proxy is trusted.
FORWARDED_FIX = "sm_forwarded_fix"

# No inline script anywhere (JSON data blocks are not executed, so they need no exception);
# style attributes stay allowed for the progress bars' widths, <style> elements do not.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def parse_trusted_proxies(raw: Any) -> int | list[IpNetwork]:
    """``SM_TRUSTED_PROXIES``: a number of hops, or addresses/CIDRs; raises ConfigError."""
    text = str(raw if raw is not None else "").strip()
    if text == "":
        return 0
    if text.isdigit():
        return int(text)
    networks: list[IpNetwork] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"SM_TRUSTED_PROXIES: {item!r} is neither a number of hops nor an address or "
                "CIDR range (e.g. 1, or 10.0.0.0/8,127.0.0.1)"
            ) from exc
    return networks


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


class TrustedNetworksFix:
    """Like werkzeug's ProxyFix, but trusting proxies by address rather than by hop count.

    ``X-Forwarded-For`` is read only when the direct peer is a trusted proxy, walking the list
    from the right past every trusted address; the first untrusted one is the client.
    ``X-Forwarded-Proto`` is believed from a trusted peer only.
    """

    def __init__(self, app: Callable[..., Any], networks: Iterable[IpNetwork]):
        self.app = app
        self.networks = list(networks)

    def trusted(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in net for net in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        if self.trusted(peer):
            environ["werkzeug.proxy_fix.orig"] = {
                "REMOTE_ADDR": peer,
                "wsgi.url_scheme": environ.get("wsgi.url_scheme"),
            }
            client = peer
            hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            for hop in reversed([h for h in hops if h]):
                if _address(hop) is None:
                    break
                client = hop.strip("[]")
                if not self.trusted(hop):
                    break
            environ["REMOTE_ADDR"] = client
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over TLS (proxy-aware)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure


def add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Headers on every manager response, the proxy-aware cookie, and the trusted proxies.

    Call last in the factory: the proxy fix must be the outermost WSGI layer, so the session
    proxy and Socket.IO see the real client too.
    """
    app.session_interface = SessionInterface()
    app.after_request(add_headers)
    trusted = parse_trusted_proxies(app.config.get("SM_TRUSTED_PROXIES", "0"))
    fix: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    if isinstance(trusted, int):
        if trusted > 0:
            fix = functools.partial(ProxyFix, x_for=trusted, x_proto=trusted)
    elif trusted:
        fix = functools.partial(TrustedNetworksFix, networks=trusted)
    if fix is not None:
        app.wsgi_app = fix(app.wsgi_app)  # type: ignore[method-assign]
        app.extensions[FORWARDED_FIX] = fix(_environ_only)


def _environ_only(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The app behind a fix applied for its rewriting of the environ alone."""
    return []
