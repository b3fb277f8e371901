"""Fixtures for the catalog tests: a plain SQLAlchemy session on a temporary SQLite file (or,
for tests marked ``postgres``, on SM_TEST_POSTGRES_URL's database)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import manager.models  # noqa: F401  (registers every table on Base.metadata)
from manager.config import normalise_database_url
from manager.extensions import Base
from tests.conftest import missing


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as db_session:
        yield db_session
    engine.dispose()


@pytest.fixture
def pg_session() -> Iterator[Session]:
    """A session on SM_TEST_POSTGRES_URL's database, every table emptied first."""
    url = os.environ.get("SM_TEST_POSTGRES_URL")
    if not url:
        missing("postgres", "SM_TEST_POSTGRES_URL is not set")
    engine = create_engine(normalise_database_url(url))
    try:
        Base.metadata.create_all(engine)
    except OperationalError as exc:
        missing("postgres", f"cannot connect to {url.split('@')[-1]}: {exc}")
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    with Session(engine) as db_session:
        yield db_session
    engine.dispose()


@pytest.fixture
def groups(tmp_path: Path) -> Path:
    folder = tmp_path / "script_groups"
    folder.mkdir()
    return folder


WriteFile = Callable[[str, Any], Path]


@pytest.fixture
def write(groups: Path) -> WriteFile:
    """``write("group/file.py", text_or_json)``: create a file under the groups folder."""

    def write_file(relative: str, content: Any) -> Path:
        path = groups / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
        return path

    return write_file
