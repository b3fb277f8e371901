"""Script processes (sessions) and execution logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from manager.extensions import Base
from manager.models.util import utcnow


class ScriptProcess(Base):
    """A live session (container) of a script; the seed's script_processes table."""

    __tablename__ = "script_processes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    script_id: Mapped[int] = mapped_column(ForeignKey("scripts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    process_id: Mapped[int] = mapped_column(Integer, default=0)
    proxy_session_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_ping: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    execution_id: Mapped[int | None] = mapped_column(ForeignKey("execution_logs.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("user_projects.id"), index=True)
    interactive: Mapped[bool] = mapped_column(default=False)
    # Why the manager stopped it (user, timeout, idle, start_failed), decides the final state.
    stop_reason: Mapped[str | None] = mapped_column(String(20))
    # Backend state (container id, address) so a restarted manager re-adopts the session.
    backend_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Execution(Base):
    """One run of a script: the seed's execution_logs table."""

    __tablename__ = "execution_logs"
    # A user's runs newest first (the log list, search), the last run of each script (the
    # dashboard) and of each script in a project (a group page): read from the index alone,
    # never by sorting every run a user has (100,000 runs: see bench/scale).
    __table_args__ = (
        Index("ix_execution_logs_user_start", "user_id", "start_time", "id"),
        Index("ix_execution_logs_user_script", "user_id", "script_id", "id"),
        Index("ix_execution_logs_user_project_script", "user_id", "project_id", "script_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    script_id: Mapped[int | None] = mapped_column(ForeignKey("scripts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("user_projects.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(100))
    execution_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    start_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    output: Mapped[str | None] = mapped_column(Text)
    error_output: Mapped[str | None] = mapped_column(Text)
    debug_output: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    conda_environment: Mapped[str | None] = mapped_column(String(100))
    proxy_url: Mapped[str | None] = mapped_column(String(255))
    log_level: Mapped[str] = mapped_column(String(10), default="INFO")
    tags: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Added for container sessions: the user/project context, how the run ended, resources.
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    interactive: Mapped[bool] = mapped_column(default=False)
    image: Mapped[str | None] = mapped_column(String(255))
    oom_killed: Mapped[bool] = mapped_column(default=False)
    timed_out: Mapped[bool] = mapped_column(default=False)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The log was cut at SM_LOG_MAX_BYTES: output past the "[log truncated]" note is not stored.
    log_truncated: Mapped[bool] = mapped_column(default=False, server_default=false())
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Files the run created or changed in its workspace; recorded when first asked after the end.
    artifacts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    last_updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
