"""execution_logs.log_truncated

Set when a run's log was cut at the size cap (SM_LOG_MAX_BYTES): the log file then ends its
output with a "[log truncated]" note, and the API and the log pages say so.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table rebuild): the full-text triggers on SQLite stay in place.
    op.add_column(
        "execution_logs",
        sa.Column("log_truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("execution_logs", "log_truncated")  # SQLite 3.35+: no table rebuild
