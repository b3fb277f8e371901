"""parameter presets, script favourites, scheduled runs

A user's named parameter values per script and project (shareable with the group), the
scripts they starred, and batch runs on a cron expression (manager/schedules/).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 07:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "parameter_presets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["user_projects.id"],
            name=op.f("fk_parameter_presets_project_id_user_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["script_id"],
            ["scripts.id"],
            name=op.f("fk_parameter_presets_script_id_scripts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_parameter_presets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parameter_presets")),
        sa.UniqueConstraint(
            "user_id", "script_id", "project_id", "name", name=op.f("uq_parameter_presets_user_id")
        ),
    )
    with op.batch_alter_table("parameter_presets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_parameter_presets_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_parameter_presets_script_id"), ["script_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_parameter_presets_user_id"), ["user_id"], unique=False)

    op.create_table(
        "script_favorites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["script_id"],
            ["scripts.id"],
            name=op.f("fk_script_favorites_script_id_scripts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_script_favorites_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_favorites")),
        sa.UniqueConstraint("user_id", "script_id", name=op.f("uq_script_favorites_user_id")),
    )
    with op.batch_alter_table("script_favorites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_script_favorites_user_id"), ["user_id"], unique=False)

    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("preset_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("next_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column("last_message", sa.Text(), nullable=True),
        sa.Column("last_execution_uuid", sa.String(length=36), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["preset_id"],
            ["parameter_presets.id"],
            name=op.f("fk_schedules_preset_id_parameter_presets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["user_projects.id"],
            name=op.f("fk_schedules_project_id_user_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["script_id"],
            ["scripts.id"],
            name=op.f("fk_schedules_script_id_scripts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_schedules_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedules_next_run_at"), ["next_run_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_schedules_script_id"), ["script_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_schedules_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedules_user_id"))
        batch_op.drop_index(batch_op.f("ix_schedules_script_id"))
        batch_op.drop_index(batch_op.f("ix_schedules_next_run_at"))

    op.drop_table("schedules")
    with op.batch_alter_table("script_favorites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_script_favorites_user_id"))

    op.drop_table("script_favorites")
    with op.batch_alter_table("parameter_presets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parameter_presets_user_id"))
        batch_op.drop_index(batch_op.f("ix_parameter_presets_script_id"))
        batch_op.drop_index(batch_op.f("ix_parameter_presets_project_id"))

    op.drop_table("parameter_presets")
