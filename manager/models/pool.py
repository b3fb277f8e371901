"""The warm pool of session containers: standbys and the demand that fills them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from manager.extensions import Base
from manager.models.util import utcnow


class PoolSlot(Base):
    """One pooled container, created for a (group, user, project) and handed to one run.

    ``state``: creating → standby → handed (``execution_uuid`` set, once: the update that
    hands it over only matches a standby), or removing. The container carries the slot id in a
    label; this row maps it to the run it serves, so the monitor and the orphan sweep know it.
    """

    __tablename__ = "session_pool_slots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot: Mapped[str] = mapped_column(String(32), unique=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("script_groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("user_projects.id", ondelete="CASCADE"), index=True
    )
    # What must match for a hand-over: image tag, limits and network, as one string.
    key: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    owner: Mapped[str] = mapped_column(String(100))  # the manager process that filled it
    execution_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    backend_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    handed_at: Mapped[datetime | None] = mapped_column(DateTime)


class PoolDemand(Base):
    """A user recently showed intent to run a script of a group in a project."""

    __tablename__ = "session_pool_demand"
    __table_args__ = (UniqueConstraint("group_id", "user_id", "project_id", "interactive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("script_groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("user_projects.id", ondelete="CASCADE"))
    interactive: Mapped[bool] = mapped_column(Boolean, default=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
