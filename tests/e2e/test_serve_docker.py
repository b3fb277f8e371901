"""End to end on real parts: ``scriptsmanager serve`` (gunicorn, gevent worker), Docker sessions
with the real runner image, the reverse proxy, a manager killed with SIGKILL and restarted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.support.serve import Server, docker_engine, login, script_ids, wait_status

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-e2e-{RUN}"
PREFIX = f"smtest-e2e-{RUN}"

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    instance = Server(tmp_path_factory.mktemp("e2e"), INSTANCE, PREFIX)
    instance.start()
    yield instance
    instance.kill()


def test_batch_run_in_a_container(server: Server):
    session = login(server)
    ids = script_ids(server, session)
    started = session.post(
        f"{server.url}/api/scripts/{ids['csv_summary.py']}/execute", json={"parameters": {}}
    )
    assert started.status_code == 201, started.text
    done = wait_status(server, session, started.json()["execution_id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["exit_code"] == 0, done
    user_id = session.get(f"{server.url}/api/auth/user").json()["user"]["id"]
    project_id = done["project_id"]
    # Workspaces are keyed by ids: data/script_groups/<group>/<user id>/<project id>/
    workspace = server.root / "data" / "script_groups" / "data_processing" / str(user_id)
    assert any((workspace / str(project_id)).rglob("*.json")), "the report stays in the workspace"


def test_interactive_session_through_the_proxy_survives_a_manager_kill(server: Server, engine):
    session = login(server)
    ids = script_ids(server, session)
    opened = session.post(f"{server.url}/api/scripts/{ids['calculator.py']}/execute", json={})
    assert opened.status_code == 201, opened.text
    body = opened.json()
    wait_status(server, session, body["execution_id"], {"running"})
    page = session.get(body["proxy_url"])
    assert page.status_code == 200 and "<html" in page.text.lower()
    answer = session.post(body["proxy_url"] + "calculate", json={"expression": "6*7"})
    assert answer.status_code == 200 and answer.json()["formatted"] == "42"

    server.kill()
    server.start()  # same data, same engine: the session is re-adopted
    again = session.get(body["proxy_url"] + "history")
    assert again.status_code == 200, again.text
    assert again.json()[0]["result"] == "42"

    stranger = requests.get(body["proxy_url"], allow_redirects=False)
    assert stranger.status_code in (302, 401)

    stopped = session.post(f"{server.url}/api/sessions/{body['execution_id']}/stop")
    assert stopped.status_code == 200
    final = wait_status(server, session, body["execution_id"], {"terminated"})
    assert final["status"] == "terminated"
    deadline = time.time() + 20
    while time.time() < deadline:
        left = engine.containers.list(
            all=True, filters={"label": f"io.scriptsmanager.execution={body['execution_id']}"}
        )
        if not left:
            break
        time.sleep(0.3)
    assert not left, "the reaper should remove the stopped container"


def test_a_script_added_on_disk_appears_without_restart(server: Server):
    session = login(server)
    groups = session.get(server.url + "/api/script-groups").json()["groups"]
    group = next(g for g in groups if g["directory"] == "data_processing")
    path = server.root / "script_groups" / "data_processing" / "hot_added.py"
    path.write_text(
        '"""\nScriptsManager Metadata:\n@description: Added while running\n'
        '@required_level: operator\n"""\nprint("hi")\n'
    )
    deadline = time.time() + 20
    names: list[str] = []
    while time.time() < deadline:
        listing = session.get(f"{server.url}/api/script-groups/{group['id']}/scripts").json()
        names = [s["filename"] for s in listing["scripts"]]
        if "hot_added.py" in names:
            break
        time.sleep(0.3)
    assert "hot_added.py" in names, server.log()
    path.unlink()
    deadline = time.time() + 20
    while time.time() < deadline:
        listing = session.get(f"{server.url}/api/script-groups/{group['id']}/scripts").json()
        names = [s["filename"] for s in listing["scripts"]]
        if "hot_added.py" not in names:
            break
        time.sleep(0.3)
    assert "hot_added.py" not in names, "a removed script should disappear (deactivated)"


def test_a_session_reopened_at_once_is_served_not_the_old_one(server: Server):
    """The proxy caches where a session lives; a session stopped and opened again right away
    must still be reached (the stale address is dropped and asked again)."""
    session = login(server)
    ids = script_ids(server, session)
    for _ in range(2):
        body = session.post(
            f"{server.url}/api/scripts/{ids['calculator.py']}/execute", json={}
        ).json()
        page = session.get(body["proxy_url"])
        assert page.status_code == 200, page.text[:300]
        session.post(f"{server.url}/api/sessions/{body['execution_id']}/stop")
        wait_status(server, session, body["execution_id"], {"terminated"})


def test_a_route_to_an_address_another_session_now_holds_is_refused(server: Server):
    """The engine gives an ended session's address to the next container it starts, maybe
    another user's; a route that outlived its session (another replica's cache, a container
    that died before the monitor noticed) then leads there. Here two live sessions' recorded
    addresses are swapped in the database: each route now leads to the other's container, and
    the real runner (its app for the calculator, the relay in front of the legacy shift notes'
    own server) refuses the request, so neither page is served through the other's URL."""
    import sqlite3

    session = login(server)
    ids = script_ids(server, session)
    opened = {}
    for name in ("calculator.py", "shift_notes.py"):
        body = session.post(f"{server.url}/api/scripts/{ids[name]}/execute", json={}).json()
        wait_status(server, session, body["execution_id"], {"running"})
        page = session.get(body["proxy_url"])
        assert page.status_code == 200, page.text[:300]
        opened[name] = (body, page.text)
    calculator, notes = (opened[name][0]["execution_id"] for name in opened)
    database = sqlite3.connect(server.root / "data" / "scriptsmanager.db")
    try:
        query = (
            "SELECT p.id, p.backend_state FROM script_processes p JOIN execution_logs e"
            " ON e.id = p.execution_id WHERE e.execution_uuid = ?"
        )
        (first, first_state), (second, second_state) = (
            database.execute(query, (key,)).fetchone() for key in (calculator, notes)
        )
        update = "UPDATE script_processes SET backend_state = ? WHERE id = ?"
        with database:
            database.execute(update, (second_state, first))
            database.execute(update, (first_state, second))
    finally:
        database.close()
    time.sleep(2)  # the proxy's cached routes (1.5 s) expire
    for name, (body, _) in opened.items():
        answer = session.get(body["proxy_url"])
        assert answer.status_code == 502, (name, answer.status_code, answer.text[:300])
        assert "container has gone" in answer.text
        other_page = next(page for other, (_, page) in opened.items() if other != name)
        assert other_page not in answer.text
    for body, _ in opened.values():
        session.post(f"{server.url}/api/sessions/{body['execution_id']}/stop")
