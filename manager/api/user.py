"""The current user's preferences and API tokens."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, session
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit
from manager.api.auth import client_address, throttle_policy, throttled_message
from manager.api.common import json_body
from manager.auth import logins
from manager.auth.passwords import change_own_password
from manager.auth.service import AccountError, create_token, update_user
from manager.auth.throttle import LoginThrottled
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


@bp.post("/password")
@login_required
def change_password():
    """Change one's own password: {current_password, new_password}.

    This browser stays logged in; every other login of the user ends. Browser logins only
    (an API token cannot change the password it does not know).
    """
    data = json_body()
    current = data.get("current_password")
    new = data.get("new_password")
    if not isinstance(current, str) or not isinstance(new, str):
        return error_response(
            400, "Send 'current_password' and 'new_password' as strings.", field="new_password"
        )
    try:
        ended = change_own_password(
            db.session,
            current_user,
            current,
            new,
            address=client_address(),
            policy=throttle_policy(),
            min_length=current_app.config["SM_PASSWORD_MIN_LENGTH"],
            keep_login=session.get(logins.SESSION_KEY),
        )
    except LoginThrottled as exc:
        db.session.commit()
        body, status = error_response(429, throttled_message(exc.retry_after))
        return body, status, {"Retry-After": str(exc.retry_after)}
    except AccountError as exc:
        if exc.field == "current_password":
            # Keep the recorded failure (it feeds the throttle) and audit it.
            audit.record(db.session, "password_change_failed")
            db.session.commit()
        else:
            db.session.rollback()
        return error_response(exc.status, exc.message, field=exc.field)
    audit.record(db.session, "password_changed", details={"other_logins_ended": ended})
    db.session.commit()
    return jsonify({"status": "changed", "other_logins_ended": ended})


@bp.get("/logins")
@login_required
def my_logins():
    """This user's live browser logins; ``current`` marks this browser's."""
    here = session.get(logins.SESSION_KEY)
    return jsonify(
        {
            "logins": [
                logins.to_dict(row, current=row.id == here)
                for row in logins.live_logins(db.session, current_user.id)
            ]
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
