"""Role checks in one place, for HTML views and the JSON API alike."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, request
from flask_login import current_user

from manager.models import LEVELS

F = TypeVar("F", bound=Callable[..., Any])


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def require_level(level: str) -> Callable[[F], F]:
    """Let the view run only for an active user of ``level`` or higher.

    Anonymous: 401 (the API) or a redirect to the login page (HTML, via login_manager).
    Too low a level: 403 with a message naming the level needed.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}")

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            from manager.extensions import login_manager

            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.reaches(level):
                abort(403, description=f"This needs the {level} level or higher.")
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def can_see_level(required: str) -> bool:
    """Whether the current user may see and run something gated at ``required``."""
    return bool(current_user.is_authenticated and current_user.reaches(required))
