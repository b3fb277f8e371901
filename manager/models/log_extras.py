"""A user's own marks on runs: bookmarks with a note, and share links.

Both point at a run by its uuid (never reused, unlike an integer id on SQLite) and go with it
when the run is deleted (ON DELETE CASCADE on PostgreSQL; the services also delete them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from manager.extensions import Base
from manager.models.util import utcnow


class RunBookmark(Base):
    """One user's bookmark and/or note on one run (personal: nobody else sees it)."""

    __tablename__ = "run_bookmarks"
    __table_args__ = (UniqueConstraint("user_id", "execution_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    execution_uuid: Mapped[str] = mapped_column(
        ForeignKey("execution_logs.execution_uuid", ondelete="CASCADE"), index=True
    )
    bookmarked: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RunShareLink(Base):
    """A token URL to a run. It grants nothing: the viewer must be able to see the run anyway."""

    __tablename__ = "run_share_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    execution_uuid: Mapped[str] = mapped_column(
        ForeignKey("execution_logs.execution_uuid", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
