"""script_groups.pool_size, session_pool_slots, session_pool_demand

The warm pool (manager/sessions/pool.py): a group's pool size (0, the default: no pool), one
row per pooled container, and the recent intent that fills the pool.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("script_groups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pool_size", sa.Integer(), server_default="0", nullable=False)
        )

    op.create_table(
        "session_pool_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("execution_uuid", sa.String(length=36), nullable=True),
        sa.Column("backend_state", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("handed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["script_groups.id"],
            name=op.f("fk_session_pool_slots_group_id_script_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["user_projects.id"],
            name=op.f("fk_session_pool_slots_project_id_user_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_session_pool_slots_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_pool_slots")),
        sa.UniqueConstraint("slot", name=op.f("uq_session_pool_slots_slot")),
    )
    with op.batch_alter_table("session_pool_slots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_pool_slots_execution_uuid"), ["execution_uuid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_session_pool_slots_key"), ["key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_session_pool_slots_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_session_pool_slots_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_session_pool_slots_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "session_pool_demand",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("interactive", sa.Boolean(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["script_groups.id"],
            name=op.f("fk_session_pool_demand_group_id_script_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["user_projects.id"],
            name=op.f("fk_session_pool_demand_project_id_user_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_session_pool_demand_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_pool_demand")),
        sa.UniqueConstraint(
            "group_id",
            "user_id",
            "project_id",
            "interactive",
            name=op.f("uq_session_pool_demand_group_id"),
        ),
    )
    with op.batch_alter_table("session_pool_demand", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_pool_demand_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_pool_demand", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_pool_demand_user_id"))
    op.drop_table("session_pool_demand")
    with op.batch_alter_table("session_pool_slots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_pool_slots_user_id"))
        batch_op.drop_index(batch_op.f("ix_session_pool_slots_state"))
        batch_op.drop_index(batch_op.f("ix_session_pool_slots_project_id"))
        batch_op.drop_index(batch_op.f("ix_session_pool_slots_key"))
        batch_op.drop_index(batch_op.f("ix_session_pool_slots_execution_uuid"))
    op.drop_table("session_pool_slots")
    with op.batch_alter_table("script_groups", schema=None) as batch_op:
        batch_op.drop_column("pool_size")
