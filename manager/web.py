"""Assemble the Flask app: configuration, extensions, auth hooks, blueprints."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, g, request, session
from flask_login import current_user

from manager import errors, proxy, security
from manager.auth.permissions import is_api_request
from manager.config import build_config
from manager.db import serialize_sqlite_writers, tune_sqlite
from manager.extensions import bootstrap, csrf, db, login_manager, socketio
from manager.logging_setup import configure_logging
from manager.logs import stream as log_stream
from manager.logs.whole_sends import WholeSends
from manager.sessions import runtime as sessions_runtime

log = logging.getLogger("scriptsmanager")
access_log = logging.getLogger("scriptsmanager.access")

# Endpoints that change state without a cookie session to protect.
CSRF_EXEMPT_ENDPOINTS = {"api_auth.login"}


def build(overrides: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(build_config(overrides=overrides))
    for key in ("SM_DATA_DIR", "SM_LOG_DIR"):
        Path(app.config[key]).mkdir(parents=True, exist_ok=True)
    configure_logging(app.config["SM_LOG_DIR"])
    if app.config.get("SM_SECRET_KEY_GENERATED") and not app.config.get("TESTING"):
        log.warning(
            "SECRET_KEY is not set: using a random key (debug mode only); "
            "logins end when the server restarts."
        )

    db.init_app(app)
    with app.app_context():
        tune_sqlite(db.engine)
        serialize_sqlite_writers(db.engine)
    csrf.init_app(app)
    bootstrap.init_app(app)
    _init_login(app)
    _init_hooks(app)
    errors.init_app(app)

    from manager import blueprints, template_globals

    template_globals.init_app(app)
    blueprints.register(app)
    sessions_runtime.init_app(app)
    proxy.init_app(app)
    # Socket.IO wraps the proxy: /socket.io/ is served before the proxy looks at a path.
    socketio.init_app(
        app,
        async_mode=app.config.get("SM_SOCKETIO_ASYNC_MODE") or log_stream.async_mode(),
        # None: same origin only ([] would turn the Origin check off altogether).
        cors_allowed_origins=app.config.get("SM_SOCKETIO_CORS_ORIGINS") or None,
        # Several manager processes: room emits go through Redis to every process.
        message_queue=app.config.get("SM_REDIS_URL") or None,
        logger=False,
        engineio_logger=False,
    )
    app.wsgi_app = WholeSends(app.wsgi_app)  # type: ignore[method-assign]
    log_stream.init_app(app, socketio)
    proxy.serve_session_hosts_first(app)
    # Last: its proxy fix must be the outermost WSGI layer.
    security.init_app(app)
    if app.config.get("SM_START_BACKGROUND"):
        _start_background(app)
    return app


def _start_background(app: Flask) -> None:
    """Work of the serving process only: hot reload of scripts and the daily log retention."""
    from manager.logs.retention import start_daily_jobs
    from manager.schedules.runner import start_scheduler

    if app.config["SM_WATCH_SCRIPTS"]:
        from manager.catalog_app import start_watcher

        start_watcher(app)
    start_daily_jobs(app)
    start_scheduler(app)
    from manager.backup.scheduler import start_backup_jobs

    start_backup_jobs(app)


def _init_login(app: Flask) -> None:
    from manager.auth import logins
    from manager.auth.service import user_for_token
    from manager.models import User

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        # The cookie names a login row: a revoked login (logout elsewhere, password change,
        # deactivation) or one from before logins were recorded counts as logged out.
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        live = False
        if user is not None and user.is_active:
            live, touched = logins.check_and_touch(
                db.session, session.get(logins.SESSION_KEY), user.id
            )
            if touched:
                db.session.commit()
        if not live:
            for key in ("_user_id", "_fresh", "_id", logins.SESSION_KEY):
                session.pop(key, None)
            return None
        return user

    @login_manager.request_loader
    def load_user_from_token(req: Any) -> User | None:
        header = req.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        user = user_for_token(db.session, header[7:].strip())
        if user is not None:
            g.token_auth = True
            db.session.commit()
        return user

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        from flask import redirect, url_for

        if is_api_request():
            return errors.error_response(401, "Log in or send an API token to use this endpoint.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _init_hooks(app: Flask) -> None:
    @app.before_request
    def before() -> None:
        g.started = time.perf_counter()
        session.permanent = True  # PERMANENT_SESSION_LIFETIME is the idle timeout
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            current_user._get_current_object()  # run the loaders (sets g.token_auth)
            if not g.get("token_auth") and request.endpoint not in CSRF_EXEMPT_ENDPOINTS:
                csrf.protect()

    @app.after_request
    def after(response: Any) -> Any:
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        user = current_user.username if current_user.is_authenticated else "-"
        access_log.info(
            '%s %s "%s %s" %s %.1fms',
            request.remote_addr,
            user,
            request.method,
            request.full_path.rstrip("?"),
            response.status_code,
            elapsed,
        )
        return response

    @app.teardown_appcontext
    def teardown(exc: BaseException | None) -> None:
        if exc is not None:
            db.session.rollback()
