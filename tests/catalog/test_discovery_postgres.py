"""On PostgreSQL, discovery numbers new groups and scripts itself (so the flush can send them
with one executemany): the rows must be those SQLite's flush, numbering them, writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from catalog_support import script_source
from conftest import WriteFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from manager.catalog.discovery import DiscoveryReport, discover
from manager.models import Script, ScriptGroup

pytestmark = pytest.mark.postgres


def scan(session: Session, groups: Path) -> DiscoveryReport:
    report = discover(session, groups)
    session.commit()
    return report


def catalog(session: Session) -> list[tuple[Any, ...]]:
    """Every script with its group, in id order; ids counted from the first one."""
    rows = session.execute(
        select(
            Script.id,
            ScriptGroup.id,
            ScriptGroup.directory_path,
            Script.filename,
            Script.metadata_json,
            Script.parameters,
            Script.required_level,
            Script.invalid_reason,
            Script.file_hash,
            Script.last_modified,
        )
        .join(ScriptGroup)
        .order_by(Script.id)
    ).all()
    first_script = min(row[0] for row in rows)
    first_group = min(row[1] for row in rows)
    return [(row[0] - first_script, row[1] - first_group, *row[2:]) for row in rows]


def test_new_rows_are_numbered_as_the_flush_numbers_them(
    session: Session, pg_session: Session, groups: Path, write: WriteFile
) -> None:
    write("beta/metadata.json", {"name": "Beta", "required_level": "developer"})
    for name in ("zulu.py", "alpha.py", "mike.py"):
        write(f"beta/{name}", script_source(f"@description: {name}\n@tags: t,{name}"))
    write("alpha/one.py", script_source('@parameters: [{"name": "n", "type": "int"}]'))
    write("alpha/broken.py", script_source("@required_level: nobody"))

    assert scan(session, groups) == scan(pg_session, groups)
    assert catalog(pg_session) == catalog(session)

    write("beta/bravo.py", script_source("@description: Later"))
    write("aardvark/first.py", script_source("@description: A new group, listed first"))
    (groups / "alpha" / "one.py").unlink()

    assert scan(session, groups) == scan(pg_session, groups)
    assert catalog(pg_session) == catalog(session)
    last = pg_session.scalar(select(Script.id).order_by(Script.id.desc()).limit(1))
    group = pg_session.scalars(select(ScriptGroup)).first()
    extra = Script(group=group, filename="extra.py", overrides={}, metadata_json={})
    pg_session.add(extra)
    pg_session.flush()  # the sequence went on from the numbers discovery took
    assert last is not None and extra.id == last + 1
