"""A container start holds no database write lock: on SQLite (one writer) every other execute,
login and monitor pass would wait for the seconds an engine takes to start a container
(found by bench/load: 92 holds of 1.8-6.4 s in one 45-second run)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

from manager.sessions.fake import FakeScript
from tests.support.catalog import script_id


def test_the_database_takes_writes_while_a_container_starts(ready_app, make_user, api, fake):
    url = ready_app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite:///"):
        pytest.skip("SQLite's single writer; PostgreSQL locks only the run's own row")
    make_user("olga", "operator")
    olga = api("olga")
    fake.program = FakeScript(exit_code=None)
    entered, release = threading.Event(), threading.Event()
    start = fake.start

    def slow_start(spec: Any) -> Any:  # the engine taking its time
        entered.set()
        release.wait(10)
        return start(spec)

    fake.start = slow_start  # type: ignore[method-assign]
    sid = script_id(ready_app, "calculator.py")
    answers: list[Any] = []
    executing = threading.Thread(
        target=lambda: answers.append(olga.post(f"/api/scripts/{sid}/execute", json={}))
    )
    executing.start()
    try:
        assert entered.wait(10), "the execute never reached the engine"
        other = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=1.0)
        try:
            other.execute("BEGIN IMMEDIATE")  # the write lock: "database is locked" if held
            other.rollback()
        finally:
            other.close()
    finally:
        release.set()
        executing.join(10)
    assert answers and answers[0].status_code == 201, answers and answers[0].get_json()
