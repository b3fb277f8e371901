"""Stop, then run again at once, on the real engine: every cycle gets a fresh container that
answers at the session's address; the one being stopped is never handed out again."""

from __future__ import annotations

import http.client
import re
import time

import pytest

from tests.support.catalog import script_id, tick

pytestmark = pytest.mark.docker

PROXY_IDS = re.compile(r"/project/(\d+)/script/(\d+)/user/(\d+)/")


def get(host: str, port: int, path: str) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_quick_stop_and_start_cycles_serve_a_live_session(app_config, backend, env_image, request):
    from manager.catalog_app import run_discovery
    from tests.sessions.session_support import TEST_INSTANCE

    app_config.update(SM_TEST_BACKEND=backend, SM_INSTANCE=TEST_INSTANCE)
    app = request.getfixturevalue("app")  # after the backend is set: it builds the app
    make_user, api = request.getfixturevalue("make_user"), request.getfixturevalue("api")
    run_discovery(app)
    make_user("olga", "operator")
    olga = api("olga")
    resolver = app.extensions["sm_proxy_resolver"]
    sid = script_id(app, "calculator.py")

    def wait_running(run_id: str) -> None:
        deadline = time.monotonic() + 60
        while olga.get(f"/api/executions/{run_id}").get_json()["status"] != "running":
            assert time.monotonic() < deadline, "the session never came up"
            tick(app)
            time.sleep(0.1)

    seen: list[str] = []
    started = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    for _cycle in range(3):
        wait_running(body["execution_id"])
        seen.append(body["execution_id"])
        project, script, user = (int(x) for x in PROXY_IDS.search(body["proxy_url"]).groups())
        target = resolver.resolve(
            user_id=user, is_admin=False, project_id=project, script_id=script, url_user_id=user
        )
        assert target.session_key == body["execution_id"]
        assert get(target.host, target.port, "/_sm/health") == 200
        stopped = olga.post(f"/api/scripts/{sid}/stop", json={})
        assert stopped.get_json() == {"stopped": [body["execution_id"]]}
        again = olga.post(f"/api/scripts/{sid}/execute", json={})  # at once
        assert again.status_code == 201, again.get_json()
        body = again.get_json()
        assert body["reused"] is False and body["execution_id"] not in seen
    wait_running(body["execution_id"])
    tick(app)
    for old in seen:
        assert olga.get(f"/api/executions/{old}").get_json()["status"] == "terminated"
    final = olga.post(f"/api/scripts/{sid}/stop", json={})
    assert final.get_json() == {"stopped": [body["execution_id"]]}
    deadline = time.monotonic() + 30
    while olga.get(f"/api/executions/{body['execution_id']}").get_json()["status"] != "terminated":
        assert time.monotonic() < deadline
        tick(app)
        time.sleep(0.1)
