"""Alembic migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import manager.models  # noqa: F401
import manager.models.logs  # noqa: F401
from manager.config import normalise_database_url
from manager.db import alembic_config, upgrade
from manager.extensions import Base
from manager.models.logs import is_unmanaged_schema_object
from tests.conftest import missing, reset_database


def schema_drift(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            opts = {
                "compare_type": True,
                # FTS5 table + shadow tables, tsvector index: made by migrations, not models.
                "include_name": lambda name, type_, _parents: (
                    not is_unmanaged_schema_object(name, type_)
                ),
            }
            context = MigrationContext.configure(conn, opts=opts)
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def roundtrip(url: str) -> None:
    from alembic import command

    reset_database(url)
    upgrade(url)
    assert schema_drift(url) == []
    engine = create_engine(url)
    assert {"users", "scripts", "execution_logs", "audit_events"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
    command.downgrade(alembic_config(url), "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(url)


def test_migrations_match_models_on_the_suite_database(database_url):
    assert schema_drift(database_url) == []


def test_sqlite_upgrade_downgrade_roundtrip(tmp_path):
    roundtrip(f"sqlite:///{tmp_path}/roundtrip.db")


@pytest.mark.postgres
def test_postgresql_upgrade_downgrade_roundtrip():
    url = os.environ.get("SM_TEST_POSTGRES_URL")
    if not url:
        missing("postgres", "SM_TEST_POSTGRES_URL is not set")
    url = normalise_database_url(url)
    try:
        create_engine(url).connect().close()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not available"
        missing("postgres", f"cannot connect to {url.split('@')[-1]}: {exc}")
    roundtrip(url)
