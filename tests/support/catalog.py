"""Helpers for tests that run sessions on the FakeBackend over the shipped example catalog."""

from __future__ import annotations

from sqlalchemy import select


def group_id(app, directory: str) -> int:
    from manager.extensions import db
    from manager.models import ScriptGroup

    with app.app_context():
        return db.session.execute(
            select(ScriptGroup.id).where(ScriptGroup.directory_path == directory)
        ).scalar_one()


def script_id(app, filename: str) -> int:
    from manager.extensions import db
    from manager.models import Script

    with app.app_context():
        return db.session.execute(select(Script.id).where(Script.filename == filename)).scalar_one()


def tick(app, clock=None) -> None:
    """One pass of the session monitor, as its background thread would run it."""
    from manager.extensions import db

    monitor = app.extensions["sm_sessions"].monitor
    if clock is not None:
        monitor.clock = clock
    with app.app_context():
        monitor.tick(db.session)
        db.session.remove()
