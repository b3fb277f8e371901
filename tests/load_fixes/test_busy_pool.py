"""Every pooled connection in use is overload, not an outage: a 503 that says so."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.fixture
def app_config(app_config: dict) -> dict:
    # One connection, and a short wait for it: the test holds it, the request cannot get one.
    options = {"pool_pre_ping": True, "pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}
    return {**app_config, "SQLALCHEMY_ENGINE_OPTIONS": options}


def test_a_request_finding_no_free_connection_is_told_the_manager_is_busy(app, api, make_user):
    from manager.extensions import db

    make_user("busy-operator")
    client = api("busy-operator")
    with app.app_context():
        db.session.remove()
        held = db.engine.connect()  # the only connection, as if a slow request held it
        try:
            held.execute(text("SELECT 1"))
            answer = client.get("/api/script-groups")
        finally:
            held.close()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    message = answer.get_json()["message"]
    assert "too busy" in message and "every database connection is in use" in message
    assert "cannot be reached" not in message
    assert client.get("/api/script-groups").status_code == 200  # and it serves again at once
