"""The Flask app a script registers its routes on, set up to live behind the manager's proxy."""

from __future__ import annotations

import importlib.util
import logging
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, has_request_context, url_for
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import cached_property

from smrunner.context import MISDIRECTED_TEXT, MISMATCH_HEADER, SessionContext

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("smrunner")

RESERVED_PREFIX = "/_sm"
RUNNER_BLUEPRINT = "_sm"
SESSION_COOKIE_NAME = "sm_script_session"
TEMPLATES_DIR = Path(__file__).with_name("templates")
DEFAULT_BRAND = "ScriptsManager"
BOOTSTRAP_CSS = "bootstrap5/css/bootstrap.min.css"
BOOTSTRAP_JS = ("bootstrap5/umd/popper.min.js", "bootstrap5/js/bootstrap.min.js")
SESSION_HEADER = "HTTP_X_SM_SESSION"  # X-SM-Session: the session the proxy meant to reach
MISDIRECTED_BODY = MISDIRECTED_TEXT.encode()


class ScriptFlask(Flask):
    """Flask app handed to scripts as ``app``.

    ``app.run()`` does nothing: scripts run with ``__name__ == "__main__"`` (so their
    ``if __name__ == "__main__": main()`` blocks still run), and a testing block that calls
    ``app.run(port=5000)`` must not start a development server; the runner serves the app itself.
    Templates come from the script's ``templates/`` folder, then the runner's (``sm_base.html``).
    """

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        debug: bool | None = None,
        load_dotenv: bool = True,
        **options: Any,
    ) -> None:
        log.info("app.run() ignored: the runner serves this app behind the ScriptsManager proxy")

    @cached_property
    def jinja_loader(self) -> BaseLoader | None:
        """Look in the script's ``templates/`` folder, then in the runner's templates."""
        folder = Path(self.root_path, self.template_folder or "templates")
        return ChoiceLoader([FileSystemLoader(folder), FileSystemLoader(TEMPLATES_DIR)])


class PrefixMiddleware:
    """Make the app see the proxy prefix as its ``SCRIPT_NAME``.

    Runs inside ProxyFix, which already turns ``X-Forwarded-Prefix`` into ``SCRIPT_NAME``. When the
    header is missing, the context's prefix is used, so generated URLs still point through the
    proxy; a path that still carries the prefix (a proxy that does not strip it) is split too.
    """

    def __init__(self, app: WSGIApplication, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            environ["SCRIPT_NAME"] = self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        elif not environ.get("SCRIPT_NAME"):
            environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)


class SessionGuard:
    """Refuse (421 Misdirected Request) a request the proxy meant for another session.

    Session containers get their addresses from the engine, which hands a freed address to the
    next container it starts, maybe another user's. A proxy whose route to a session outlived
    that session's container (another replica's cache, a container that died before the
    manager noticed) then reaches the new one; the header names the session it meant, and
    this app answers only its own. ``X-SM-Session-Mismatch`` tells the proxy to look again.
    A request without the header (a health check, a test) passes.
    """

    def __init__(self, app: WSGIApplication, session: str) -> None:
        self.app = app
        self.session = session

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        meant = environ.pop(SESSION_HEADER, None)
        if meant is not None and meant != self.session:
            start_response(
                "421 Misdirected Request",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(MISDIRECTED_BODY))),
                    MISMATCH_HEADER,
                ],
            )
            return [MISDIRECTED_BODY]
        return self.app(environ, start_response)


def bootstrap_static_dir() -> Path | None:
    """Return Bootstrap-Flask's static folder (Bootstrap 5 CSS and JS), or None if not installed."""
    spec = importlib.util.find_spec("flask_bootstrap")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)), "static")
    return folder if (folder / BOOTSTRAP_CSS).is_file() else None


def runner_blueprint() -> Blueprint:
    """Return the runner's own routes under the reserved ``/_sm/`` prefix."""
    static = bootstrap_static_dir()
    bp = Blueprint(
        RUNNER_BLUEPRINT,
        __name__,
        url_prefix=RESERVED_PREFIX,
        static_folder=str(static) if static else None,
        static_url_path="/static",
    )

    @bp.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return bp


def create_app(context: SessionContext, secret_key: str | None = None) -> ScriptFlask:
    """Build the app for ``context``'s script, ready for the script to add routes to."""
    script_dir = Path(context.script_path).resolve().parent
    # root_path is the script's folder: its templates/ and static/ belong to the script.
    app = ScriptFlask("sm_script", root_path=str(script_dir))
    app.config.update(
        # A fresh key per session: script sessions work, and nothing signed outlives the session.
        SECRET_KEY=secret_key or secrets.token_hex(32),
        # Its own name, so the proxy tells it from the manager's cookie; scoped to the prefix.
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_PATH=context.prefix or "/",
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.register_blueprint(runner_blueprint())
    has_bootstrap = bootstrap_static_dir() is not None
    environment = context.environment
    brand_name = str(context.brand.get("name") or DEFAULT_BRAND)
    logo_url = context.brand.get("logo_url") or context.brand.get("logo")

    @app.context_processor
    def sm_template_context() -> dict[str, Any]:
        css: str | None = None
        js: list[str] = []
        if has_bootstrap and has_request_context():
            css = url_for(f"{RUNNER_BLUEPRINT}.static", filename=BOOTSTRAP_CSS)
            js = [url_for(f"{RUNNER_BLUEPRINT}.static", filename=name) for name in BOOTSTRAP_JS]
        language = str(environment.get("USER_LANGUAGE") or "en")
        return {
            "sm_brand": {"name": brand_name, "logo_url": logo_url},
            "sm_theme": "dark" if environment.get("USER_THEME") == "dark" else "light",
            "sm_language": language if language.replace("-", "").isalnum() else "en",
            "sm_project_name": environment.get("PROJECT_NAME") or "",
            "sm_environment": environment,
            "sm_bootstrap_css": css,
            "sm_bootstrap_js": js,
        }

    # One proxy hop (the manager) sets these headers; nothing else reaches the container.
    app.wsgi_app = SessionGuard(  # type: ignore[method-assign]
        ProxyFix(
            PrefixMiddleware(app.wsgi_app, context.prefix),
            x_for=1,
            x_proto=1,
            x_host=1,
            x_port=1,
            x_prefix=1,
        ),
        context.session,
    )
    return app


def user_routes(app: Flask) -> list[str]:
    """Return the URL rules the script registered (not ``static``, not the runner's own)."""
    return [
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not rule.endpoint.startswith(f"{RUNNER_BLUEPRINT}.")
    ]
