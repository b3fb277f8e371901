"""stored search document on PostgreSQL, indexes for a user's runs

Three indexes on execution_logs (both engines): a user's runs by start time, by script, by
project and script, so the log list, the dashboard and a group page read a page from an index
instead of sorting every run the user has.

PostgreSQL only: the run's search document becomes a stored generated tsvector column with the
GIN index on it, replacing the expression index of 0002. A search then reads each candidate's
stored document instead of building it again from the run's output (what made a common word
or a phrase take seconds). SQLite keeps its FTS5 table: nothing changes there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:55:00
"""

from collections.abc import Sequence

from alembic import op

from manager.logs import search

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_execution_logs_user_start": ["user_id", "start_time", "id"],
    "ix_execution_logs_user_script": ["user_id", "script_id", "id"],
    "ix_execution_logs_user_project_script": ["user_id", "project_id", "script_id", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "execution_logs", columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in search.postgres_column_sql():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in search.postgres_column_drop_sql():
            op.execute(statement)
    for name in INDEXES:
        op.drop_index(name, table_name="execution_logs")
