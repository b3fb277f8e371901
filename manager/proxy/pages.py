"""The proxy's own answers: login redirects, and friendly 403/404/502/503 pages (or JSON)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from flask import Flask, render_template

log = logging.getLogger("scriptsmanager.proxy")

SESSION_HOST_KEY = "sm.manager_origin"  # set in the environ of requests on a session host
STATUS_KEY = "sm.status"  # the status a proxied request was answered with (for metrics)

TITLES = {
    401: "Please log in to open this session.",
    403: "You are not allowed to open this session.",
    404: "There is no such session.",
    502: "This session has ended or cannot be reached.",
    503: "This session is starting.",
}


def wants_json(environ: Mapping[str, Any]) -> bool:
    """True when the client asked for JSON rather than a page."""
    accept = environ.get("HTTP_ACCEPT", "")
    return "application/json" in accept and "text/html" not in accept


def wants_page(environ: Mapping[str, Any]) -> bool:
    """True for a browser navigating (GET/HEAD accepting HTML)."""
    return environ.get("REQUEST_METHOD") in ("GET", "HEAD") and "text/html" in environ.get(
        "HTTP_ACCEPT", ""
    )


def full_path(environ: Mapping[str, Any]) -> str:
    """The path and query string the client asked for, percent-encoded."""
    path = quote(
        (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1"),
        safe="/:@!$&'()*+,;=-._~%",
    )
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def redirect(start_response: Any, location: str) -> Iterable[bytes]:
    start_response("302 Found", [("Location", location), ("Content-Length", "0")])
    return []


def unauthorized(
    app: Flask, environ: Mapping[str, Any], start_response: Any, login_url: str
) -> Iterable[bytes]:
    """Send browsers to the login page (coming back afterwards); 401 for anything else."""
    if wants_page(environ):
        return redirect(start_response, f"{login_url}?next={quote(full_path(environ), safe='')}")
    return error(app, environ, start_response, 401, TITLES[401])


def error(
    app: Flask,
    environ: Mapping[str, Any],
    start_response: Any,
    status: int,
    message: str,
    *,
    retry_after: int | None = None,
) -> Iterable[bytes]:
    """A page (or JSON) explaining why the session cannot be shown."""
    headers = [("Cache-Control", "no-store")]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    if wants_json(environ):
        payload: dict[str, Any] = {"error": status, "message": message}
        if retry_after is not None:
            payload["retry_after"] = retry_after
        body = json.dumps(payload).encode()
        headers.append(("Content-Type", "application/json"))
    else:
        body = _render(app, environ, status, message, retry_after).encode()
        headers.append(("Content-Type", "text/html; charset=utf-8"))
    headers.append(("Content-Length", str(len(body))))
    if isinstance(environ, dict):
        environ[STATUS_KEY] = status
    start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
    return [body]


_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _render(
    app: Flask, environ: Mapping[str, Any], status: int, message: str, retry_after: int | None
) -> str:
    """Render with the app's look (navigation, theme, language); a bare page if that fails,
    and on a session host, where nothing of the manager's (its assets, its login) is served."""
    title = TITLES.get(status, "The session cannot be shown.")
    if SESSION_HOST_KEY in environ:
        return _bare(status, title, message, retry_after, environ[SESSION_HOST_KEY] or "")
    try:
        with app.request_context(dict(environ)):
            return render_template(
                "proxy/error.html",
                status=status,
                title=title,
                message=message,
                refresh=retry_after if status == 503 else None,
            )
    except Exception:  # the page must not fail because of the page; the log has why
        log.exception("could not render the proxy error page")
    return _bare(status, title, message, retry_after, environ.get("SCRIPT_NAME", ""))


def _bare(status: int, title: str, message: str, retry_after: int | None, home: str) -> str:
    """A self-contained page (no script, no assets) with a link to the manager at ``home``."""
    refresh = f'<meta http-equiv="refresh" content="{retry_after or 2}">' if status == 503 else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{refresh}"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{status}</title><style>body{{font-family:system-ui,sans-serif;max-width:40rem;"
        f"margin:4rem auto;padding:0 1rem;color:#333}}a{{color:#0d6efd}}</style></head><body>"
        f"<p style='font-size:3rem;margin:0;color:#999'>{status}</p>"
        f"<h1 style='font-size:1.4rem'>{escape(title)}</h1><p>{escape(message)}</p>"
        f"<p><a href='{escape(home)}/' data-sm=\"to-dashboard\">Back to the dashboard</a></p>"
        "</body></html>"
    )
