"""The API contract: /api/openapi.json (OpenAPI 3.1) and /api/docs (Swagger UI, served locally)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from manager.openapi.spec import build_spec

bp = Blueprint(
    "openapi",
    __name__,
    url_prefix="/api",
    template_folder="templates",
    static_folder="static",
    static_url_path="/openapi-static",
)


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI description; public (it holds no data), cached per app."""
    spec = current_app.extensions.get("sm_openapi")
    if spec is None:
        spec = current_app.extensions["sm_openapi"] = build_spec(current_app)
    return jsonify(spec)


@bp.get("/docs")
def docs_page():
    """Swagger UI on the spec; its assets come from manager/static/vendor/swagger-ui."""
    return render_template("openapi/docs.html")
