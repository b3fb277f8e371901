"""The script catalog: groups, scripts, user tags and environments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from manager.extensions import Base
from manager.models.util import utcnow


class ScriptGroup(Base):
    __tablename__ = "script_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Folder name under script_groups/: the group's stable identity on disk.
    directory_path: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    required_level: Mapped[str] = mapped_column(String(20), default="operator")
    conda_environment: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    discovered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The whole parsed metadata.json (localized descriptions, icon, category, limits, ...).
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fields an admin changed in the app; they win over metadata.json.
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # None when valid, else the exact reason discovery rejected it.
    invalid_reason: Mapped[str | None] = mapped_column(Text)
    # Warm standby containers per (user, project) with recent intent; 0: no pool (admin UI).
    pool_size: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    scripts: Mapped[list[Script]] = relationship(back_populates="group", order_by="Script.filename")


class Script(Base):
    __tablename__ = "scripts"
    __table_args__ = (UniqueConstraint("group_id", "filename"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("script_groups.id"), index=True)
    filename: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    description_long_path: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[str | None] = mapped_column(Text)  # comma-separated, as in the seed
    required_level: Mapped[str] = mapped_column(String(20), default="operator")
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_modified: Mapped[datetime | None] = mapped_column(DateTime)
    category: Mapped[str | None] = mapped_column(String(100))
    execution_timeout: Mapped[int | None] = mapped_column(Integer)
    # Everything merged from the sources (localized texts, flask_port, proxy_enabled, ...).
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fields edited in the app: they win over every file and survive re-parsing.
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    invalid_reason: Mapped[str | None] = mapped_column(Text)
    file_hash: Mapped[str | None] = mapped_column(String(64))

    group: Mapped[ScriptGroup] = relationship(back_populates="scripts")


class UserScriptTag(Base):
    __tablename__ = "user_script_tags"
    __table_args__ = (UniqueConstraint("user_id", "script_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    script_id: Mapped[int] = mapped_column(ForeignKey("scripts.id", ondelete="CASCADE"))
    tags: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CondaEnvironment(Base):
    """An environment spec under conda-envs/ and the state of its image."""

    __tablename__ = "conda_environments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(String(255))
    python_version: Mapped[str | None] = mapped_column(String(20))
    is_available: Mapped[bool] = mapped_column(Boolean, default=True)
    detected_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_verified: Mapped[datetime | None] = mapped_column(DateTime)
    image_tag: Mapped[str | None] = mapped_column(String(255))
    image_state: Mapped[str | None] = mapped_column(String(20))
    image_error: Mapped[str | None] = mapped_column(Text)
    packages: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    spec_hash: Mapped[str | None] = mapped_column(String(64))
