"""Start rules through the API on the FakeBackend: reuse, parameter conflicts, quotas per group,
required parameters, and the slot check under concurrent requests (SQLite and PostgreSQL).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, select

from manager.config import normalise_database_url
from manager.models import Execution
from manager.sessions.fake import FakeBackend, FakeScript
from tests.conftest import ApiClient, missing, reset_database
from tests.support.catalog import script_id, tick

PROXY_IDS = re.compile(r"/project/(\d+)/script/(\d+)/user/(\d+)/")  # whatever host comes first


@pytest.fixture
def olga(ready_app, make_user, api) -> ApiClient:
    make_user("olga", "operator")
    return api("olga")


def status_of(app, execution_id: str) -> str:
    from manager.extensions import db

    with app.app_context():
        found = db.session.execute(
            select(Execution.status).where(Execution.execution_uuid == execution_id)
        ).scalar_one()
        db.session.remove()
        return found


# ---------------------------------------------------------------- stop, then run again


def test_stop_then_run_again_starts_a_fresh_session_every_time(ready_app, olga, fake):
    fake.program = FakeScript(exit_code=None)
    resolver = ready_app.extensions["sm_proxy_resolver"]
    sid = script_id(ready_app, "calculator.py")
    first = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert first.status_code == 201, first.get_json()
    previous = first.get_json()
    tick(ready_app)
    for _cycle in range(6):
        stopped = olga.post(f"/api/scripts/{sid}/stop", json={})
        assert stopped.get_json() == {"stopped": [previous["execution_id"]]}
        # At once, before the monitor saw the old container end: never the one being stopped.
        again = olga.post(f"/api/scripts/{sid}/execute", json={})
        assert again.status_code == 201, again.get_json()
        body = again.get_json()
        assert body["reused"] is False and body["execution_id"] != previous["execution_id"]
        tick(ready_app)
        assert status_of(ready_app, previous["execution_id"]) == "terminated"
        assert status_of(ready_app, body["execution_id"]) == "running"
        project, script, user = PROXY_IDS.search(body["proxy_url"]).groups()
        target = resolver.resolve(
            user_id=int(user), is_admin=False, project_id=int(project),
            script_id=int(script), url_user_id=int(user),
        )  # fmt: skip
        assert target.session_key == body["execution_id"]  # the URL answers from the new one
        previous = body
    final = olga.post(f"/api/scripts/{sid}/stop", json={})
    assert final.status_code == 200 and final.get_json()["stopped"] == [previous["execution_id"]]


def test_a_session_stuck_in_stopping_is_killed(ready_app, olga, fake):
    """A stop the engine did not carry out is not left to run, uncounted, for ever."""
    from datetime import timedelta

    from manager.models import utcnow

    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "calculator.py")
    run = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    tick(ready_app)
    original_stop = fake.stop
    fake.stop = lambda handle, now=False, timeout=10.0: None  # type: ignore[method-assign]
    assert olga.post(f"/api/sessions/{run}/stop").status_code == 200
    tick(ready_app)
    live = olga.get("/api/sessions").get_json()["sessions"]
    assert [(s["execution_id"], s["process_status"]) for s in live] == [(run, "stopping")]
    fake.stop = original_stop  # type: ignore[method-assign]
    tick(ready_app, clock=lambda: utcnow() + timedelta(minutes=2))
    tick(ready_app)
    assert status_of(ready_app, run) == "terminated"
    container = next(s for s in fake.sessions.values() if s.spec.execution_uuid == run)
    assert container.stopped == "now"


# ---------------------------------------------------------------- reopen with other parameters


def test_reopening_with_other_parameters_asks_which(ready_app, olga, fake):
    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "calculator.py")
    url = f"/api/scripts/{sid}/execute"
    first = olga.post(url, json={"parameters": {"precision": 3}}).get_json()
    same = olga.post(url, json={"parameters": {"precision": 3}})
    assert same.status_code == 200 and same.get_json()["reused"] is True
    bare = olga.post(url, json={})  # no parameters given: open what runs
    assert bare.status_code == 200 and bare.get_json()["execution_id"] == first["execution_id"]

    conflict = olga.post(url, json={"parameters": {"precision": 8}})
    assert conflict.status_code == 409
    body = conflict.get_json()
    assert body["error"] == 409 and body["options"] == ["open", "restart"]
    assert body["running"]["execution_id"] == first["execution_id"]
    assert body["running"]["proxy_url"] == first["proxy_url"]
    assert body["running"]["parameters"]["precision"] == 3
    assert "precision" in body["message"]
    assert len(fake.started) == 1

    opened = olga.post(url, json={"parameters": {"precision": 8}, "on_conflict": "open"})
    assert opened.status_code == 200 and opened.get_json()["reused"] is True
    assert opened.get_json()["parameters"]["precision"] == 3

    bad = olga.post(url, json={"parameters": {"precision": 8}, "on_conflict": "maybe"})
    assert bad.status_code == 400 and "on_conflict" in bad.get_json()["message"]

    restarted = olga.post(url, json={"parameters": {"precision": 8}, "on_conflict": "restart"})
    assert restarted.status_code == 201, restarted.get_json()
    fresh = restarted.get_json()
    assert fresh["execution_id"] != first["execution_id"] and fresh["reused"] is False
    assert fresh["parameters"]["precision"] == 8
    tick(ready_app)
    assert status_of(ready_app, first["execution_id"]) == "terminated"
    assert status_of(ready_app, fresh["execution_id"]) == "running"
    live = olga.get("/api/active-proxies").get_json()["sessions"]
    assert [s["execution_id"] for s in live] == [fresh["execution_id"]]


def test_on_conflict_restart_without_a_running_session_just_starts(ready_app, olga, fake):
    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "calculator.py")
    started = olga.post(f"/api/scripts/{sid}/execute", json={"on_conflict": "restart"})
    assert started.status_code == 201


# ---------------------------------------------------------------- required parameters


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_a_required_parameter_sent_empty_is_refused(ready_app, olga, fake, empty):
    sid = script_id(ready_app, "unit_converter.py")  # "value": required, default 100.0
    refused = olga.post(f"/api/scripts/{sid}/execute", json={"parameters": {"value": empty}})
    assert refused.status_code == 400
    body = refused.get_json()
    assert "value" in body["errors"] and "empty" in body["errors"]["value"]
    assert "value" in body["message"]
    assert not fake.started
    # Left out, the default applies.
    assert olga.post(f"/api/scripts/{sid}/execute", json={"parameters": {}}).status_code == 201


def test_a_required_parameter_that_allows_empty_takes_it(ready_app, olga, fake):
    from manager.extensions import db
    from manager.models import Script

    sid = script_id(ready_app, "unit_converter.py")
    with ready_app.app_context():
        script = db.session.get(Script, sid)
        script.parameters = [
            {**p, "allow_empty": True} if p["name"] == "value" else p for p in script.parameters
        ]
        db.session.commit()
    started = olga.post(f"/api/scripts/{sid}/execute", json={"parameters": {"value": ""}})
    assert started.status_code == 201, started.get_json()


# ---------------------------------------------------------------- quotas per group


def test_group_limit_counts_only_that_groups_sessions(ready_app, olga, fake):
    """engineering_tools allows 3 a user, data_processing 2; the global cap is 5."""
    fake.program = FakeScript(exit_code=0, run_polls=1000)
    progress = script_id(ready_app, "progress_demo.py")  # engineering_tools
    converter = script_id(ready_app, "unit_converter.py")  # data_processing
    for _ in range(3):
        assert olga.post(f"/api/scripts/{progress}/execute", json={}).status_code == 201
    # Three live elsewhere do not fill data_processing's two.
    assert olga.post(f"/api/scripts/{converter}/execute", json={}).status_code == 201
    assert olga.post(f"/api/scripts/{converter}/execute", json={}).status_code == 201
    over = olga.post(f"/api/scripts/{converter}/execute", json={})
    assert over.status_code == 429
    body = over.get_json()
    assert body["limit"] == "max_sessions_per_user"
    assert "in this group" in body["message"] and "Data Processing" in body["message"]
    more = olga.post(f"/api/scripts/{progress}/execute", json={})
    assert more.status_code == 429 and "in this group" in more.get_json()["message"]


def test_global_per_user_cap_still_counts_every_group(ready_app, olga, fake):
    ready_app.extensions["sm_sessions"].service.config.__dict__["max_per_user"] = 3
    fake.program = FakeScript(exit_code=0, run_polls=1000)
    progress = script_id(ready_app, "progress_demo.py")
    converter = script_id(ready_app, "unit_converter.py")
    for _ in range(2):
        assert olga.post(f"/api/scripts/{progress}/execute", json={}).status_code == 201
    assert olga.post(f"/api/scripts/{converter}/execute", json={}).status_code == 201
    over = olga.post(f"/api/scripts/{converter}/execute", json={})
    assert over.status_code == 429
    body = over.get_json()
    assert body["limit"] == "max_sessions_per_user_global"
    assert "SM_MAX_SESSIONS_PER_USER" in body["message"] and "all groups" in body["message"]


# ---------------------------------------------------------------- the slot check is atomic


def _race(apps: list, username: str, sid: int, threads: int) -> list[int]:
    """``threads`` executes at once, spread over ``apps`` (one per manager process)."""
    clients = []
    for index in range(threads):
        client = ApiClient(apps[index % len(apps)].test_client())
        assert client.login(username).status_code == 200
        clients.append(client)
    barrier = threading.Barrier(threads)
    codes: list[int] = []
    lock = threading.Lock()

    def run(client: ApiClient) -> None:
        barrier.wait()
        code = client.post(f"/api/scripts/{sid}/execute", json={}).status_code
        with lock:
            codes.append(code)

    workers = [threading.Thread(target=run, args=(c,)) for c in clients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return sorted(codes)


def _two_managers(app_config: dict, backend: FakeBackend, max_per_user: int) -> list:
    """Two apps on one database: two manager processes, each with its own pool and locks."""
    from manager import create_app
    from manager.catalog_app import run_discovery

    config = {**app_config, "SM_TEST_BACKEND": backend, "SM_MAX_SESSIONS_PER_USER": max_per_user}
    apps = [create_app(config), create_app(config)]
    run_discovery(apps[0])
    return apps


def create_app_for(config: dict):
    from manager import create_app

    return create_app(config)


def _check_race(apps: list, make_user) -> None:
    sid = script_id(apps[0], "progress_demo.py")
    codes = _race(apps, "olga", sid, threads=6)
    assert codes.count(201) == 2 and codes.count(429) == 4, codes
    # Interactive: at most one per (user, script, project), whatever the timing.
    calc = script_id(apps[0], "calculator.py")
    codes = _race(apps, "ivan", calc, threads=4)
    assert codes.count(201) == 1 and codes.count(200) == 3, codes


def test_concurrent_executes_never_share_the_last_slot_sqlite(app_config, make_user, app):
    if not app_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("this one is about SQLite; the PostgreSQL one follows")
    backend = FakeBackend(FakeScript(exit_code=None))
    apps = _two_managers(app_config, backend, max_per_user=2)
    make_user("olga", "operator")
    make_user("ivan", "operator")
    _check_race(apps, make_user)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = os.environ.get("SM_TEST_POSTGRES_URL")
    if not url:
        missing("postgres", "SM_TEST_POSTGRES_URL is not set")
    url = normalise_database_url(url)
    try:
        create_engine(url).connect().close()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not available"
        missing("postgres", f"cannot connect to {url.split('@')[-1]}: {exc}")
    from manager.db import upgrade

    if url != normalise_database_url(os.environ.get("DATABASE_URL") or "sqlite://"):
        reset_database(url)  # the suite's own database is emptied by the app fixture instead
    upgrade(url)
    yield url


@pytest.mark.postgres
def test_concurrent_executes_never_share_the_last_slot_postgres(app_config, postgres_url):
    from manager.auth.service import create_user
    from manager.extensions import db
    from tests.conftest import _empty_tables

    backend = FakeBackend(FakeScript(exit_code=None))
    config = {**app_config, "SQLALCHEMY_DATABASE_URI": postgres_url}
    _empty_tables(create_app_for(config))
    apps = _two_managers(config, backend, max_per_user=2)
    with apps[0].app_context():
        for name in ("olga", "ivan"):
            create_user(
                db.session, {"username": name, "password": "password123", "user_level": "operator"}
            )
        db.session.commit()
    try:
        _check_race(apps, None)
    finally:
        for application in apps:
            with application.app_context():
                db.session.remove()
                db.engine.dispose()
