"""A group card's script count comes from one aggregate query (bench/scale: loading 1,000
scripts to count them took most of the dashboard's time) and still counts what the user may
run: active, valid, at or below the user's level."""

from __future__ import annotations

from sqlalchemy import event, update

from manager.models import Script


def counts_by_api(client) -> dict[int, int]:
    answer = client.get("/api/script-groups")
    assert answer.status_code == 200, answer.get_json()
    return {g["id"]: g["script_count"] for g in answer.get_json()["groups"]}


def counts_by_listing(client, group_ids) -> dict[int, int]:
    """What each group's own script listing shows as runnable (loads every script)."""
    counts = {}
    for group_id in group_ids:
        scripts = client.get(f"/api/script-groups/{group_id}/scripts").get_json()["scripts"]
        counts[group_id] = sum(1 for s in scripts if s["is_valid"])
    return counts


def test_counts_match_the_listings_for_every_level(ready_app, make_user, api):
    from manager.extensions import db

    with ready_app.app_context():
        scripts = db.session.execute(db.select(Script).order_by(Script.id)).scalars().all()
        assert len(scripts) >= 4
        first, second, third = scripts[0].id, scripts[1].id, scripts[2].id
        third_group = scripts[2].group_id
        db.session.execute(update(Script).where(Script.id == first).values(is_active=False))
        db.session.execute(
            update(Script).where(Script.id == second).values(invalid_reason="bad header")
        )
        db.session.execute(update(Script).where(Script.id == third).values(required_level="admin"))
        db.session.commit()
        db.session.remove()
    for level in ("viewer", "operator", "developer", "admin"):
        make_user(f"u_{level}", level)
        client = api(f"u_{level}")
        shown = counts_by_api(client)
        assert shown == counts_by_listing(client, shown), level
        assert sum(shown.values()) > 0 or level == "viewer"
    admin, developer = counts_by_api(api("u_admin")), counts_by_api(api("u_developer"))
    if third_group in developer:
        assert admin[third_group] == developer[third_group] + 1  # the admin-only script


def test_the_dashboard_does_not_load_scripts_to_count_them(ready_app, make_user, api):
    from manager.extensions import db

    make_user("olga", "operator")
    olga = api("olga")
    assert olga.get("/").status_code == 200
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with ready_app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert olga.get("/").status_code == 200
        assert olga.get("/api/script-groups").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    reading_scripts = [s for s in statements if "FROM scripts" in s and "count(" not in s]
    # Favourites and recent runs read scripts by id; no statement reads every script.
    assert not [s for s in reading_scripts if "WHERE" not in s], reading_scripts
    assert not [s for s in reading_scripts if "scripts.group_id IN" in s], reading_scripts
