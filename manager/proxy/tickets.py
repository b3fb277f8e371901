"""Single-use tickets: the manager's origin lets a browser into one session host.

The manager mints a ticket for a logged-in caller and one session (its host label and execution
uuid) and redirects the browser to the session host, which redeems it once for a host-only
cookie. Tickets live in the database (only their SHA-256), so any replica can redeem what
another minted, and exactly one redemption wins.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, scoped_session

from manager.models import SessionTicket, utcnow

PURGE_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class TicketClaims:
    """What a redeemed ticket vouches for."""

    user_id: int
    is_admin: bool
    login_id: str | None
    host_label: str
    session_key: str
    manager_origin: str


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def mint_ticket(
    db: Session | scoped_session[Any],
    *,
    user_id: int,
    is_admin: bool,
    login_id: str | None,
    host_label: str,
    session_key: str,
    manager_origin: str,
    ttl: float,
    now: datetime | None = None,
) -> str:
    """Store a new ticket and return it (the plain value exists only in the redirect)."""
    now = now or utcnow()
    db.execute(delete(SessionTicket).where(SessionTicket.expires_at < now - PURGE_AFTER))
    ticket = secrets.token_urlsafe(32)
    db.add(
        SessionTicket(
            ticket_hash=_digest(ticket),
            user_id=user_id,
            is_admin=is_admin,
            login_id=login_id,
            host_label=host_label,
            session_key=session_key,
            manager_origin=manager_origin[:255],
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    db.commit()
    return ticket


def redeem_ticket(
    db: Session | scoped_session[Any], ticket: str, host_label: str, now: datetime | None = None
) -> TicketClaims | None:
    """Use a ticket up; None when unknown, used, expired or minted for another host."""
    if not ticket or len(ticket) > 128:
        return None
    now = now or utcnow()
    digest = _digest(ticket)
    result: Any = db.execute(
        update(SessionTicket)
        .where(
            SessionTicket.ticket_hash == digest,
            SessionTicket.used_at.is_(None),
            SessionTicket.expires_at > now,
            SessionTicket.host_label == host_label,
        )
        .values(used_at=now)
    )
    won = result.rowcount
    db.commit()
    if won != 1:
        return None
    row = db.execute(select(SessionTicket).where(SessionTicket.ticket_hash == digest)).scalar_one()
    return TicketClaims(
        user_id=row.user_id,
        is_admin=row.is_admin,
        login_id=row.login_id,
        host_label=row.host_label,
        session_key=row.session_key,
        manager_origin=row.manager_origin,
    )
