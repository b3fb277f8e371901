"""Languages and their strings."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify

from manager.i18n import LANGUAGE_NAMES, merged

bp = Blueprint("api_i18n", __name__, url_prefix="/api/i18n")


@bp.get("/languages")
def languages():
    supported = current_app.config["SM_SUPPORTED_LANGUAGES"]
    return jsonify(
        {
            "languages": [
                {"code": code, "name": LANGUAGE_NAMES.get(code, code)} for code in supported
            ],
            "default": current_app.config["SM_DEFAULT_LANGUAGE"],
        }
    )


@bp.get("/<language>")
def strings(language: str):
    if language not in current_app.config["SM_SUPPORTED_LANGUAGES"]:
        abort(404, description=f"Language {language!r} is not offered; see /api/i18n/languages.")
    return jsonify({"language": language, "translations": merged(language)})
