"""Pure header work: what goes to the session container, and what comes back to the browser."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

# Hop-by-hop headers (RFC 9110 7.6.1) plus the proxy's own, never passed through as they come.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

# Request headers (WSGI environ keys) that are dropped or set by the proxy itself.
DROPPED_REQUEST_KEYS = frozenset(
    {
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_PROXY_CONNECTION",
        "HTTP_PROXY_AUTHORIZATION",
        "HTTP_TE",
        "HTTP_TRAILER",
        "HTTP_TRANSFER_ENCODING",
        "HTTP_UPGRADE",
        "HTTP_EXPECT",  # the server in front already answered 100-continue
        "HTTP_HOST",
        "HTTP_COOKIE",  # forwarded after the manager's cookies are removed
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_X_CSRFTOKEN",  # the manager's CSRF token (Flask-WTF's two header names)
        "HTTP_X_CSRF_TOKEN",
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_PREFIX",
        "HTTP_X_FORWARDED_PORT",
        "HTTP_FORWARDED",
        "HTTP_X_SM_SESSION",  # the proxy names the session it means (outgoing.request_head)
    }
)

CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # any control character but a tab


class UnsafeRequestHeader(ValueError):
    """A request header holds control characters; it is not forwarded (400)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The request header {name} holds control characters.")


# Response headers the WSGI server in front writes itself.
SERVER_SET = frozenset({"date", "server"})

_environ_names: dict[str, str] = {}


def header_name(environ_key: str) -> str:
    """``HTTP_X_FOO_BAR`` -> ``X-Foo-Bar`` (memoised: the same few keys come every request)."""
    name = _environ_names.get(environ_key)
    if name is None:
        name = environ_key[5:].replace("_", "-").title()
        if len(_environ_names) < 4096:
            _environ_names[environ_key] = name
    return name


def split_cookies(header: str, drop: Collection[str]) -> tuple[dict[str, str], str]:
    """Split a Cookie header into the cookies named in ``drop`` and the header without them."""
    dropped: dict[str, str] = {}
    kept: list[str] = []
    for part in header.split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name in drop:
            dropped.setdefault(name, value.strip())
        else:
            kept.append(part)
    return dropped, "; ".join(kept)


def connection_tokens(environ: Mapping[str, object]) -> frozenset[str]:
    """Extra hop-by-hop header names listed in the request's Connection header, as environ keys."""
    value = environ.get("HTTP_CONNECTION")
    if not isinstance(value, str):
        return frozenset()
    tokens = {token.strip().upper().replace("-", "_") for token in value.split(",")}
    tokens -= {"", "KEEP_ALIVE", "CLOSE", "UPGRADE"}
    return frozenset("HTTP_" + token for token in tokens)


def request_line(method: str, target: str) -> bytes:
    """The request line sent upstream; ``target`` is the request-target (path and query)."""
    return f"{method} {target} HTTP/1.1\r\n".encode("latin-1")


def header_lines(
    environ: Mapping[str, object],
    *,
    host: str,
    cookie: str,
    forwarded: Mapping[str, str],
    framing: str,
    skip: Collection[str] = (),
) -> bytes:
    """Build the header lines sent upstream after the request line, and the blank line.

    ``framing`` is a ready ``Content-Length``/``Transfer-Encoding`` line (or ""), ``skip``
    extra environ keys to leave out.
    """
    lines = [f"Host: {host}\r\n"]
    given: list[tuple[str, str]] = []  # the client's headers: (name, value)
    for key, value in environ.items():
        if key[:5] == "HTTP_" and key not in DROPPED_REQUEST_KEYS and key not in skip:
            given.append((header_name(key), str(value)))
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        given.append(("Content-Type", str(content_type)))
    if cookie:
        given.append(("Cookie", cookie))
    # One search over every value (most requests have none): then name the header at fault.
    if CONTROL.search("".join(value for _, value in given)):
        raise UnsafeRequestHeader(next(name for name, value in given if CONTROL.search(value)))
    lines.extend(f"{name}: {value}\r\n" for name, value in given)
    for name, value in forwarded.items():
        lines.append(f"{name}: {value}\r\n")
    lines.append(framing)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def rewrite_location(value: str, prefix: str, upstream_hosts: Collection[str]) -> str:
    """Keep a redirect under the proxy prefix.

    ``/foo`` becomes ``<prefix>/foo`` unless already prefixed; an absolute URL to the container
    itself (``upstream_hosts``) becomes the prefixed path; anything else is left alone.
    """
    if value.startswith("/") and not value.startswith("//"):
        return value if _under(value.split("?", 1)[0], prefix) else prefix + value
    if "//" not in value:
        return value  # relative: the browser resolves it under the prefix
    parts = urlsplit(value)
    if parts.netloc.lower() not in upstream_hosts:
        return value
    path = parts.path or "/"
    if not _under(path, prefix):
        path = prefix + path
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return path + query + fragment


def scope_cookie_path(path: str, prefix: str) -> str:
    """Map a cookie Path set by the script to the same place under the prefix."""
    if not path.startswith("/") or path == "/":
        return prefix + "/"
    return path if _under(path, prefix) else prefix + path


def rewrite_set_cookie(value: str, prefix: str, forbidden: Collection[str]) -> str | None:
    """Scope a Set-Cookie to the prefix and drop its Domain; None when the name is forbidden."""
    parts = value.split(";")
    name = parts[0].partition("=")[0].strip()
    if not name or name in forbidden:
        return None
    out = [parts[0].strip()]
    has_path = False
    for attribute in parts[1:]:
        key, sep, attr_value = attribute.partition("=")
        key = key.strip()
        lowered = key.lower()
        if lowered == "domain" or not key:
            continue
        if lowered == "path":
            has_path = True
            out.append(f"Path={scope_cookie_path(attr_value.strip(), prefix)}")
        else:
            out.append(f"{key}{sep}{attr_value.strip()}" if sep else key)
    if not has_path:
        out.append(f"Path={prefix}/")
    return "; ".join(out)


@functools.lru_cache(maxsize=256)  # the same one or two origins on every response
def protective_headers(frame_origin: str | None) -> tuple[tuple[str, str], ...]:
    """Headers set on every proxied response, whatever the script sent: no MIME sniffing, and
    only the manager (``frame_origin``; nobody when None) may frame the session's pages."""
    ancestors = frame_origin or "'none'"
    return (
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", f"frame-ancestors {ancestors}"),
    )


def _replaced_by_proxy(lowered: str) -> bool:
    """Response headers of the script the proxy drops: CORS grants would open the session to
    other origins; nosniff is set by the proxy itself."""
    return lowered.startswith(CORS_GRANT) or lowered == "x-content-type-options"


CORS_GRANT = "access-control-allow-"
# Response header names (lower case) response_headers does something with; the rest, most lines
# of most responses, pass as they are after one set lookup (and the CORS prefix test).
_ACTED_ON = HOP_BY_HOP | SERVER_SET | {"x-content-type-options", "location", "set-cookie"}


def response_headers(
    lines: list[str],
    *,
    prefix: str,
    upstream_hosts: Collection[str],
    forbidden_cookies: Collection[str],
    keep_date: bool = False,
    protect: tuple[tuple[str, str], ...] = (),
) -> list[tuple[str, str]]:
    """Turn upstream header lines into WSGI headers: hop-by-hop removed, redirects and cookies
    kept under the prefix; Date and Server dropped (the server in front writes its own) unless
    ``keep_date``; CORS grants dropped and the ``protect`` headers added."""
    headers: list[tuple[str, str]] = []
    extra_hop: set[str] = set()
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        lowered = name.lower()
        if lowered not in _ACTED_ON and not lowered.startswith(CORS_GRANT):
            headers.append((name, value.strip()))
            continue
        value = value.strip()
        if lowered in HOP_BY_HOP:
            if lowered == "connection":
                extra_hop.update(token.strip().lower() for token in value.split(","))
            continue
        if lowered in SERVER_SET and not (keep_date and lowered == "date"):
            continue
        if _replaced_by_proxy(lowered):
            continue
        if lowered == "location":
            value = rewrite_location(value, prefix, upstream_hosts)
        elif lowered == "set-cookie":
            rewritten = rewrite_set_cookie(value, prefix, forbidden_cookies)
            if rewritten is None:
                continue
            value = rewritten
        headers.append((name, value))
    if extra_hop and extra_hop - {"close", "keep-alive"}:
        headers = [(k, v) for k, v in headers if k.lower() not in extra_hop]
    headers.extend(protect)
    return headers
