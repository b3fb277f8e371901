"""Error pages and JSON errors: a readable message, never a bare 500 page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from manager.auth.permissions import is_api_request

log = logging.getLogger("scriptsmanager")


def error_response(status: int, message: str, **extra: object):
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
