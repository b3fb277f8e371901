"""Small helpers shared by the JSON API blueprints."""

from __future__ import annotations

from typing import Any

from flask import abort, request


def json_body() -> dict[str, Any]:
    """The request's JSON object, or 400 with a readable message."""
    data = request.get_json(silent=True)
    if data is None and request.form:
        return dict(request.form)
    if not isinstance(data, dict):
        abort(400, description="Send a JSON object in the request body.")
    return data


def int_arg(name: str, default: int, minimum: int = 1, maximum: int = 1000) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, description=f"Query parameter {name!r} must be a whole number.")
    if not minimum <= value <= maximum:
        abort(400, description=f"Query parameter {name!r} must be between {minimum} and {maximum}.")
    return value
