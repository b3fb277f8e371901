"""The seed's port-based interface on the real engine: Shift Notes opens like any interactive
script, serves its own app on 8080 and reaches the user's project folder as --data-dir."""

from __future__ import annotations

import http.client
import json
import re
import time

import pytest

from tests.support.catalog import script_id, tick

pytestmark = pytest.mark.docker

PROXY_IDS = re.compile(r"/project/(\d+)/script/(\d+)/user/(\d+)/")


def test_a_legacy_script_serves_through_the_session_address(
    app_config, backend, env_image, request
):
    from manager.catalog_app import run_discovery
    from tests.sessions.session_support import TEST_INSTANCE

    app_config.update(SM_TEST_BACKEND=backend, SM_INSTANCE=TEST_INSTANCE)
    app = request.getfixturevalue("app")
    make_user, api = request.getfixturevalue("make_user"), request.getfixturevalue("api")
    run_discovery(app)
    make_user("lena", "operator", preferred_language="fr")
    lena = api("lena")
    sid = script_id(app, "shift_notes.py")
    started = lena.post(f"/api/scripts/{sid}/execute", json={})
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    assert body["interactive"] is True
    deadline = time.monotonic() + 60
    while lena.get(f"/api/executions/{body['execution_id']}").get_json()["status"] != "running":
        assert time.monotonic() < deadline, "the legacy script never answered"
        tick(app)
        time.sleep(0.2)
    project, script, user = (int(x) for x in PROXY_IDS.search(body["proxy_url"]).groups())
    target = app.extensions["sm_proxy_resolver"].resolve(
        user_id=user, is_admin=False, project_id=project, script_id=script, url_user_id=user
    )
    connection = http.client.HTTPConnection(target.host, target.port, timeout=5)
    connection.request("GET", "/api/project-info")
    info = json.loads(connection.getresponse().read())
    connection.close()
    assert info["data_dir"] == "/workspace" and info["language"] == "fr"
    assert info["project_id"] == str(project) and info["user_level"] == "operator"
    assert lena.post(f"/api/scripts/{sid}/stop", json={}).status_code == 200
    deadline = time.monotonic() + 30
    while lena.get(f"/api/executions/{body['execution_id']}").get_json()["status"] != "terminated":
        assert time.monotonic() < deadline
        tick(app)
        time.sleep(0.2)
