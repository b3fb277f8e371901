"""Share links of runs, and who may see a run.

A share link is a random token URL on the manager's origin. It grants nothing by itself: the
person opening it must be logged in and able to see the run anyway (its owner, or an admin while
``SM_ADMIN_CAN_ACCESS_ALL_DATA`` is on). Links expire and may be revoked. The token is kept as
is (not hashed) because it is no credential, so its creator can copy the link again.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from manager.extensions import DbSession
from manager.models import Execution, User, utcnow
from manager.models.log_extras import RunShareLink

DEFAULT_DAYS = 7
MAX_DAYS = 90
MAX_ACTIVE_PER_RUN = 20


class ShareError(Exception):
    """A share request that cannot be served: ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def can_see_run(user: User, execution: Execution, config: Mapping[str, Any]) -> bool:
    """Whether ``user`` may see the run: its owner, or an admin allowed to see all data."""
    if execution.user_id == user.id:
        return True
    return bool(user.is_admin and config.get("SM_ADMIN_CAN_ACCESS_ALL_DATA", True))


def expiry_days(raw: Any) -> int:
    """The lifetime asked for, in whole days from 1 to :data:`MAX_DAYS`; ShareError 400."""
    if raw is None:
        return DEFAULT_DAYS
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_DAYS:
        raise ShareError(400, f"expires_in_days must be a whole number from 1 to {MAX_DAYS}.")
    return raw


def is_active(link: RunShareLink, now: datetime) -> bool:
    return link.revoked_at is None and link.expires_at > now


def share_view(link: RunShareLink, now: datetime, url_root: str = "") -> dict[str, Any]:
    """A link as the API shows it."""
    return {
        "id": link.id,
        "execution_id": link.execution_uuid,
        "url": f"{url_root}/logs/shared/{link.token}",
        "token": link.token,
        "created_at": link.created_at.isoformat() if link.created_at else None,
        "expires_at": link.expires_at.isoformat(),
        "revoked": link.revoked_at is not None,
        "active": is_active(link, now),
    }


def create_share(
    db: DbSession, user: User, execution: Execution, days: int, now: datetime | None = None
) -> RunShareLink:
    """A new link to the run; ShareError 429 past :data:`MAX_ACTIVE_PER_RUN` active links."""
    now = now or utcnow()
    active = db.execute(
        select(func.count(RunShareLink.id)).where(
            RunShareLink.execution_uuid == execution.execution_uuid,
            RunShareLink.revoked_at.is_(None),
            RunShareLink.expires_at > now,
        )
    ).scalar_one()
    if active >= MAX_ACTIVE_PER_RUN:
        raise ShareError(
            429,
            f"This run already has {active} active share links, the most allowed is "
            f"{MAX_ACTIVE_PER_RUN}: revoke one first.",
        )
    link = RunShareLink(
        token=secrets.token_urlsafe(32),
        execution_uuid=execution.execution_uuid,
        created_by=user.id,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    db.add(link)
    db.flush()
    return link


def list_shares(db: DbSession, execution_uuid: str) -> list[RunShareLink]:
    """The run's links, newest first (expired and revoked ones too)."""
    return list(
        db.execute(
            select(RunShareLink)
            .where(RunShareLink.execution_uuid == execution_uuid)
            .order_by(RunShareLink.created_at.desc(), RunShareLink.id.desc())
        ).scalars()
    )


def revoke_share(
    db: DbSession, user: User, share_id: int, config: Mapping[str, Any], now: datetime | None = None
) -> RunShareLink:
    """Revoke a link of a run the user can see; ShareError 404 otherwise."""
    link = db.get(RunShareLink, share_id)
    execution = (
        db.execute(
            select(Execution).where(Execution.execution_uuid == link.execution_uuid)
        ).scalar()
        if link is not None
        else None
    )
    if link is None or execution is None or not can_see_run(user, execution, config):
        raise ShareError(404, f"No share link with id {share_id} is yours.")
    if link.revoked_at is None:
        link.revoked_at = now or utcnow()
    return link


def resolve_share(
    db: DbSession, user: User, token: str, config: Mapping[str, Any], now: datetime | None = None
) -> Execution:
    """The run behind a token, if the link is live and ``user`` could see the run anyway.

    Raises ShareError 404 for an unknown token or a run the user may not see (the same answer,
    so a token tells nothing about runs one cannot see), 410 for an expired or revoked link.
    """
    now = now or utcnow()
    unknown = ShareError(404, "This share link does not exist, or the run is not visible to you.")
    if not token or len(token) > 64:
        raise unknown
    link = db.execute(select(RunShareLink).where(RunShareLink.token == token)).scalar()
    if link is None:
        raise unknown
    execution = db.execute(
        select(Execution).where(Execution.execution_uuid == link.execution_uuid)
    ).scalar()
    if execution is None or not can_see_run(user, execution, config):
        raise unknown
    if link.revoked_at is not None:
        raise ShareError(410, "This share link was revoked by the person who shared it.")
    if link.expires_at <= now:
        raise ShareError(410, f"This share link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC.")
    return execution
