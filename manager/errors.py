"""Error pages and JSON errors: a readable message, never a bare 500 page."""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, g, jsonify, render_template
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import (
    DataError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from manager.auth.permissions import is_api_request
from manager.i18n import localize_message
from manager.template_globals import current_language

log = logging.getLogger("scriptsmanager")

BARE_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status}</title></head>'
    '<body style="font-family: sans-serif; max-width: 40rem; margin: 4rem auto">'
    '<h1>{status}</h1><p>{message}</p><p><a href="">Retry</a></p></body></html>'
)
DATABASE_DOWN = (
    "The database cannot be reached right now; nothing was changed. "
    "Retry in a moment: the manager reconnects on its own."
)
POOL_BUSY = (
    "The manager is too busy right now: every database connection is in use; nothing was "
    "changed. Retry in a moment."
)


def _language() -> str:
    """The user's language; English when even that cannot be found (the database is down)."""
    try:
        return current_language()
    except Exception:  # noqa: BLE001 - an error page must not fail in turn
        return "en"


def error_response(status: int, message: str, **extra: object):
    # Messages are raised in English; the catalog's msg.* keys put them in the user's language.
    language = _language()
    message = localize_message(message, language)
    errors = extra.get("errors")
    if isinstance(errors, dict):
        extra["errors"] = {key: localize_message(str(text), language)
                           for key, text in errors.items()}  # fmt: skip
    if is_api_request():
        body = {"error": status, "message": message, **extra}
        return jsonify(body), status
    try:
        return render_template("error.html", status=status, message=message), status
    except SQLAlchemyError:  # the page's frame needs the database (its user), which is down
        _forget_user()
    try:
        return render_template("error.html", status=status, message=message), status
    except SQLAlchemyError:
        page = BARE_PAGE.format(status=status, message=escape(message))
        return page, status, {"Content-Type": "text/html; charset=utf-8"}


def _forget_user() -> None:
    """Make the rest of the request anonymous: its user cannot be loaded (no database), and
    the error page and the access log must not try again."""
    from manager.extensions import db, login_manager

    with contextlib.suppress(SQLAlchemyError):  # the connection is gone: nothing to undo
        db.session.rollback()
    g._login_user = login_manager.anonymous_user()  # flask-login's per-request user


def database_unavailable(app: Flask, exc: Exception):
    """503 with a clear message when the database is down or unreachable, or when every pooled
    connection stayed in use for the pool's timeout (overload, not an outage: said so).

    The request's user could not be loaded either: from here on it is anonymous, so that the
    error page and the access log do not try the database again.
    """
    busy = isinstance(exc, PoolTimeout)
    first_line = str(exc).splitlines()[0] if str(exc) else exc
    log.warning("database %s: %s", "pool exhausted" if busy else "unavailable", first_line)
    _forget_user()
    response, status = error_response(503, POOL_BUSY if busy else DATABASE_DOWN)
    response = app.make_response((response, status))
    response.headers["Retry-After"] = "5"
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            400, "The form expired or its security token is missing. Reload the page and retry."
        )

    for kind in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(kind, lambda exc: database_unavailable(app, exc))

    @app.errorhandler(StatementError)
    def unstorable_value(exc: StatementError):
        """A value the database cannot hold (a NUL byte in a text on PostgreSQL, a number out
        of range) is the request's fault: 400, not 500."""
        orig = getattr(exc, "orig", None)
        if isinstance(exc, DataError) or (isinstance(orig, ValueError) and "NUL" in str(orig)):
            from manager.extensions import db

            with contextlib.suppress(SQLAlchemyError):
                db.session.rollback()
            log.info("refused a value the database cannot store: %s", str(orig or exc)[:200])
            return error_response(
                400,
                "A value contains something the database cannot store (a NUL character, or a "
                "number out of range). Remove it and try again.",
            )
        log.exception("unhandled database error: %s", exc)
        return error_response(500, "Something went wrong on our side; it has been logged.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error: %s", exc)
        return error_response(500, "Something went wrong on our side; it has been logged.")
