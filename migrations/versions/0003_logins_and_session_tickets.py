"""revocable logins and session-host tickets

``user_logins``: one row per browser login, named by the session cookie, so logout, a password
change or a deactivation ends it server-side. ``session_tickets``: single-use tickets the
manager's origin hands out to enter one session host.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_logins",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=255), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_logins_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_logins")),
    )
    op.create_index(op.f("ix_user_logins_user_id"), "user_logins", ["user_id"], unique=False)
    op.create_table(
        "session_tickets",
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("login_id", sa.String(length=64), nullable=True),
        sa.Column("host_label", sa.String(length=100), nullable=False),
        sa.Column("session_key", sa.String(length=64), nullable=False),
        sa.Column("manager_origin", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_session_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_hash", name=op.f("pk_session_tickets")),
    )
    op.create_index(
        op.f("ix_session_tickets_user_id"), "session_tickets", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_session_tickets_expires_at"), "session_tickets", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_session_tickets_expires_at"), table_name="session_tickets")
    op.drop_index(op.f("ix_session_tickets_user_id"), table_name="session_tickets")
    op.drop_table("session_tickets")
    op.drop_index(op.f("ix_user_logins_user_id"), table_name="user_logins")
    op.drop_table("user_logins")
