"""run_bookmarks, run_share_links

A user's own bookmark and note on a run, and share links of a run (a token that grants
nothing by itself: manager/logs/shares.py). Both key on the run's uuid and cascade with it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_bookmarks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("execution_uuid", sa.String(length=36), nullable=False),
        sa.Column("bookmarked", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_uuid"],
            ["execution_logs.execution_uuid"],
            name=op.f("fk_run_bookmarks_execution_uuid_execution_logs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_run_bookmarks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_bookmarks")),
        sa.UniqueConstraint("user_id", "execution_uuid", name=op.f("uq_run_bookmarks_user_id")),
    )
    with op.batch_alter_table("run_bookmarks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_bookmarks_execution_uuid"), ["execution_uuid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_run_bookmarks_user_id"), ["user_id"], unique=False)

    op.create_table(
        "run_share_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("execution_uuid", sa.String(length=36), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_run_share_links_created_by_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["execution_uuid"],
            ["execution_logs.execution_uuid"],
            name=op.f("fk_run_share_links_execution_uuid_execution_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_share_links")),
        sa.UniqueConstraint("token", name=op.f("uq_run_share_links_token")),
    )
    with op.batch_alter_table("run_share_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_share_links_created_by"), ["created_by"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_run_share_links_execution_uuid"), ["execution_uuid"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("run_share_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_share_links_execution_uuid"))
        batch_op.drop_index(batch_op.f("ix_run_share_links_created_by"))

    op.drop_table("run_share_links")
    with op.batch_alter_table("run_bookmarks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_bookmarks_user_id"))
        batch_op.drop_index(batch_op.f("ix_run_bookmarks_execution_uuid"))

    op.drop_table("run_bookmarks")
