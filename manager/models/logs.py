"""Log viewer state: saved filter presets, and locks that keep scheduled jobs single-run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from manager.extensions import Base
from manager.models.util import utcnow

# Search objects made by migration 0002 outside the models (SQLite FTS5 table and its shadow
# tables, PostgreSQL expression index): the schema drift check must leave them alone.
SEARCH_TABLE = "execution_search"
SEARCH_INDEX = "ix_execution_logs_search"
# PostgreSQL, from migration 0009: the stored search document of a run and its GIN index.
SEARCH_COLUMN = "search_document"
SEARCH_COLUMN_INDEX = "ix_execution_logs_search_document"


def is_unmanaged_schema_object(name: str | None, type_: str) -> bool:
    """True for the full-text search objects that migrations create and no model declares."""
    if name is None:
        return False
    if type_ == "table":
        return name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_")
    if type_ == "column":
        return name == SEARCH_COLUMN
    return type_ == "index" and name in (SEARCH_INDEX, SEARCH_COLUMN_INDEX)


class LogFilterPreset(Base):
    """A named set of log list filters a user saved to reuse."""

    __tablename__ = "log_filter_presets"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, Any]:
        """The preset as the API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "filters": self.filters,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


class JobLock(Base):
    """Who runs a scheduled job now, and the last period it completed.

    ``holder``/``expires_at`` are set while a process runs the job (an expired lock may be taken
    over: its holder died); ``last_period`` (e.g. the day) stops a second run in the same period.
    """

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    acquired_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_period: Mapped[str | None] = mapped_column(String(32))
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
