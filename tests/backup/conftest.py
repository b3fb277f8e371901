"""Backup fixtures: a world of users, projects, runs with log files, and workspace files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from manager.extensions import Base, db
from tests.logs.test_api_support import World, build_world


@pytest.fixture
def world(app, make_user) -> World:
    world = build_world(app, make_user)
    world.run("olga", output="first line\nsecond line", errors="a warning")
    world.run("ivan", project="ivan_alpha", output="ivan's output")
    data = Path(app.config["SM_DATA_DIR"])
    for user, project in (("olga", "olga_default"), ("ivan", "ivan_alpha")):
        folder = (
            data / "script_groups" / "reports" / str(world.users[user])
            / str(world.projects[project])
        )  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.csv").write_text(f"user,{user}\n1,2\n")
        (folder / "image.bin").write_bytes(bytes(range(256)) * 64)
        (folder / "scratch.tmp").write_text("left out by the default exclude patterns")
    return world


def files_snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under the roots, by path relative to its root."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("scriptsmanager.db"):
                found[f"{root.name}/{path.relative_to(root)}"] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


def rows_snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every model table, in primary key order."""
    found = {}
    with app.app_context():
        db.session.remove()
        with db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                rows = conn.execute(select(table).order_by(*order)).all()
                found[table.name] = [tuple(row) for row in rows]
    return found
