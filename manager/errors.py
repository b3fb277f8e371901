"""Error pages and JSON errors: a readable message, never a bare 500 page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from manager.auth.permissions import is_api_request
from manager.i18n import localize_message
from manager.template_globals import current_language

log = logging.getLogger("scriptsmanager")


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
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            400, "The form expired or its security token is missing. Reload the page and retry."
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error: %s", exc)
        return error_response(500, "Something went wrong on our side; it has been logged.")
