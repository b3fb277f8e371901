"""log search, filter presets, job locks

Full-text search over execution_logs: an FTS5 table kept in sync by triggers on SQLite, a GIN
expression index on PostgreSQL (both defined in manager.logs.search, which the app queries with
the very same expressions). Plus the log_filter_presets and job_locks tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from manager.logs import search

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=True),
        sa.Column("acquired_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_period", sa.String(length=32), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_locks")),
    )
    op.create_table(
        "log_filter_presets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_log_filter_presets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_filter_presets")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_log_filter_presets_user_id")),
    )
    with op.batch_alter_table("log_filter_presets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_log_filter_presets_user_id"), ["user_id"], unique=False
        )

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        statements = search.sqlite_schema_sql()
    elif dialect == "postgresql":
        statements = search.postgres_schema_sql()
    else:
        statements = []
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        statements = search.sqlite_drop_sql()
    elif dialect == "postgresql":
        statements = search.postgres_drop_sql()
    else:
        statements = []
    for statement in statements:
        op.execute(statement)
    with op.batch_alter_table("log_filter_presets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_filter_presets_user_id"))
    op.drop_table("log_filter_presets")
    op.drop_table("job_locks")
