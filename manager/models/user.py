"""Users, their API tokens and login attempts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from manager.extensions import Base
from manager.models.util import utcnow

if TYPE_CHECKING:
    from manager.models.project import UserProject

# Lowest to highest; a user reaches every level at or below their own.
LEVELS: tuple[str, ...] = ("viewer", "operator", "developer", "admin")
LANGUAGES: tuple[str, ...] = ("en", "es", "it", "fr")
THEMES: tuple[str, ...] = ("light", "dark")


def level_at_least(level: str, required: str) -> bool:
    """True when ``level`` reaches ``required``; unknown levels reach nothing."""
    if level not in LEVELS or required not in LEVELS:
        return False
    return LEVELS.index(level) >= LEVELS.index(required)


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    user_level: Mapped[str] = mapped_column(String(20))
    preferred_language: Mapped[str] = mapped_column(String(5), default="en")
    preferred_theme: Mapped[str] = mapped_column(String(10), default="light")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(DateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    active_project_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_projects.id", use_alter=True, ondelete="SET NULL")
    )

    active_project: Mapped[UserProject | None] = relationship(
        foreign_keys=[active_project_id], post_update=True
    )

    def reaches(self, required: str) -> bool:
        return level_at_least(self.user_level, required)

    @property
    def is_admin(self) -> bool:
        return self.user_level == "admin"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "user_level": self.user_level,
            "preferred_language": self.preferred_language,
            "preferred_theme": self.preferred_theme,
            "is_active": self.is_active,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "last_login": self.last_login.isoformat() if self.last_login else None,
            "active_project_id": self.active_project_id,
        }


class ApiToken(Base):
    """A bearer token for automation; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """One failed login, kept in the database so the limit holds across processes."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class UserLogin(Base):
    """One browser login: the signed session cookie names it, so it can be ended server-side.

    Logout revokes that login; a password change or deactivation revokes all of the user's.
    """

    __tablename__ = "user_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, in the cookie
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class SessionTicket(Base):
    """A single-use ticket that lets a browser into one session host (see manager.proxy.hosts).

    Only the SHA-256 of the ticket is stored; ``used_at`` is set by the one exchange that wins.
    """

    __tablename__ = "session_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    login_id: Mapped[str | None] = mapped_column(String(64))
    host_label: Mapped[str] = mapped_column(String(100))
    session_key: Mapped[str] = mapped_column(String(64))
    manager_origin: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
