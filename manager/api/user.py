"""The current user's preferences and API tokens."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, session
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.auth.service import AccountError, create_token, update_user
from manager.errors import error_response
from manager.extensions import db
from manager.models import ApiToken

bp = Blueprint("api_user", __name__, url_prefix="/api/user")

PREFERENCE_FIELDS = {
    "language": "preferred_language",
    "theme": "preferred_theme",
    "preferred_language": "preferred_language",
    "preferred_theme": "preferred_theme",
}


@bp.post("/preferences")
def preferences():
    """Set language and/or theme; applied at once. Anonymous users keep them in the session."""
    data = json_body()
    changes = {PREFERENCE_FIELDS[k]: v for k, v in data.items() if k in PREFERENCE_FIELDS}
    unknown = sorted(set(data) - set(PREFERENCE_FIELDS))
    if unknown or not changes:
        return error_response(400, "Send 'language' (en, es, it, fr) and/or 'theme' (light, dark).")
    if not current_user.is_authenticated:
        # The login page lets a visitor choose too; validated like a user's choice.
        from manager.models.user import LANGUAGES, THEMES

        if changes.get("preferred_language", "en") not in LANGUAGES:
            return error_response(400, "Language must be one of: en, es, it, fr.")
        if changes.get("preferred_theme", "light") not in THEMES:
            return error_response(400, "Theme must be one of: light, dark.")
        if "preferred_language" in changes:
            session["language"] = changes["preferred_language"]
        if "preferred_theme" in changes:
            session["theme"] = changes["preferred_theme"]
        return jsonify({"preferences": changes})
    try:
        applied = update_user(db.session, current_user, changes, actor=current_user)
    except AccountError as exc:
        db.session.rollback()
        return error_response(400, exc.message, field=exc.field)
    if applied:
        audit.record(db.session, "preferences_updated", details=applied)
    db.session.commit()
    return jsonify(
        {
            "preferences": {
                "language": current_user.preferred_language,
                "theme": current_user.preferred_theme,
            }
        }
    )


@bp.get("/tokens")
@login_required
def list_tokens():
    tokens = db.session.execute(
        select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id)
    ).scalars()
    return jsonify(
        {
            "tokens": [
                {
                    "id": t.id,
                    "name": t.name,
                    "prefix": t.prefix,
                    "created_at": t.created_at.isoformat(),
                    "last_used": t.last_used.isoformat() if t.last_used else None,
                    "revoked": t.revoked_at is not None,
                }
                for t in tokens
            ]
        }
    )


@bp.post("/tokens")
@login_required
def new_token():
    data = json_body()
    token, plain = create_token(db.session, current_user, str(data.get("name", ""))[:100])
    db.session.flush()
    audit.record(db.session, "token_created", target=f"token:{token.id}")
    db.session.commit()
    return jsonify(
        {"id": token.id, "token": plain, "note": "Store this token now: it is not shown again."}
    ), 201


@bp.delete("/tokens/<int:token_id>")
@login_required
def revoke(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404, description="No such token.")
    from manager.auth.service import revoke_token

    revoke_token(db.session, token)
    audit.record(db.session, "token_revoked", target=f"token:{token.id}")
    db.session.commit()
    return jsonify({"status": "revoked"})
