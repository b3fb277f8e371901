"""Values the database cannot hold are the request's fault: 400 with a message, never a 500
(found by Schemathesis on PostgreSQL: a NUL character in a preset's name)."""

from __future__ import annotations

from tests.support.catalog import script_id


def test_a_nul_character_in_a_stored_text_is_a_400(ready_app, api, make_user) -> None:
    make_user("olga", "operator")
    olga = api("olga")
    sid = script_id(ready_app, "unit_converter.py")
    answer = olga.post(
        f"/api/scripts/{sid}/presets", json={"name": "bad\x00name", "parameters": {}}
    )
    from manager.extensions import db

    with ready_app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    if postgres:  # SQLite stores a NUL; PostgreSQL cannot
        assert answer.status_code == 400, answer.get_json()
        assert "NUL" in answer.get_json()["message"]
    else:
        assert answer.status_code == 201, answer.get_json()
    again = olga.post(f"/api/scripts/{sid}/presets", json={"name": "fine", "parameters": {}})
    assert again.status_code == 201, again.get_json()  # the session was rolled back cleanly
