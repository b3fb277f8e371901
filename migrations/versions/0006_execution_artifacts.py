"""execution_logs.artifacts

The files a run created or changed in its workspace (path, size, modified time), recorded once
the run has ended; NULL until then.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 08:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table rebuild): the full-text triggers on SQLite stay in place.
    op.add_column("execution_logs", sa.Column("artifacts", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("execution_logs", "artifacts")
