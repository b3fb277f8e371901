"""What every template sees: brand, language, theme, translation and the user's context."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from manager.i18n import LANGUAGE_NAMES, category_label, localized, translate
from manager.proxy.links import session_host_problem


def current_language() -> str:
    """The user's language, else the one picked on the login page, else the default."""
    supported = current_app.config["SM_SUPPORTED_LANGUAGES"]
    if current_user.is_authenticated and current_user.preferred_language in supported:
        return str(current_user.preferred_language)
    chosen = session.get("language")
    if chosen in supported:
        return str(chosen)
    return str(current_app.config["SM_DEFAULT_LANGUAGE"])


def current_theme() -> str:
    if current_user.is_authenticated:
        return str(current_user.preferred_theme or "light")
    return "dark" if session.get("theme") == "dark" else "light"


def init_app(app: Flask) -> None:
    @app.context_processor
    def inject() -> dict[str, Any]:
        language = current_language()
        return {
            "_": lambda key, **values: translate(key, language, **values),
            "lang": language,
            "theme": current_theme(),
            "languages": {
                code: LANGUAGE_NAMES.get(code, code)
                for code in current_app.config["SM_SUPPORTED_LANGUAGES"]
            },
            "brand_name": current_app.config["SM_BRAND_NAME"],
            "localized": lambda value: localized(value, language),
            "category_label": lambda category: category_label(category, language),
            "csrf_token": generate_csrf,
            "session_host_problem": session_host_problem,
        }
