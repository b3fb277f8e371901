"""The monitor learns which sessions run from one listing per pass and asks the engine about
each of the others only: one call per session per pass made a pass take a minute under load
(bench/load: finished batch runs stayed "running" until their users gave up)."""

from __future__ import annotations

from typing import Any

import pytest

from manager.sessions.fake import FakeScript
from tests.sessions.test_session_rules import status_of
from tests.support.catalog import script_id, tick


def test_only_sessions_the_listing_misses_are_polled(ready_app, make_user, api, fake):
    make_user("olga", "operator")
    olga = api("olga")
    fake.program = FakeScript(exit_code=None)  # runs until finished
    sid = script_id(ready_app, "unit_converter.py")
    runs = []
    for _ in range(2):  # the group allows two at once
        answer = olga.post(f"/api/scripts/{sid}/execute", json={})
        assert answer.status_code == 201, answer.get_json()
        runs.append(answer.get_json()["execution_id"])
    tick(ready_app)
    polled: list[str] = []
    poll = fake.poll

    def counted(handle: Any) -> Any:
        polled.append(handle.execution_uuid)
        return poll(handle)

    fake.poll = counted  # type: ignore[method-assign]
    fake.running_ids = lambda: {  # type: ignore[method-assign]
        s.container_id for s in fake.sessions.values() if s.exit is None and not s.removed
    }
    tick(ready_app)
    assert polled == []  # both listed as running: not one call each
    fake.finish(runs[1], 0)
    tick(ready_app)
    assert polled == [runs[1]]
    assert status_of(ready_app, runs[1]) == "completed"
    assert status_of(ready_app, runs[0]) == "running"


def test_without_a_listing_every_session_is_polled(ready_app, make_user, api, fake):
    make_user("olga", "operator")
    olga = api("olga")
    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "unit_converter.py")
    run = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    fake.running_ids = lambda: None  # type: ignore[method-assign]
    fake.finish(run, 3)
    tick(ready_app)
    assert status_of(ready_app, run) == "failed"


@pytest.mark.docker
def test_the_docker_listing_is_one_call(sessions, docker_client):
    """``running_ids`` and ``list_sessions`` list without inspecting each container."""
    running = sessions.start("import time\ntime.sleep(60)\n")
    ended = sessions.start("print('done')\n")
    ended.wait()
    backend = running.backend
    inspected: list[str] = []
    inspect = backend.client.api.inspect_container

    def counted(container: Any) -> Any:
        inspected.append(container)
        return inspect(container)

    backend.client.api.inspect_container = counted
    try:
        ids = backend.running_ids()
        listed = {h.execution_uuid: h for h in backend.list_sessions()}
    finally:
        backend.client.api.inspect_container = inspect
    assert inspected == []
    assert running.handle.state["container_id"] in ids
    assert ended.handle.state["container_id"] not in ids
    assert listed[running.handle.execution_uuid].state == backend.get_state(running.handle)


def test_an_ending_session_leaves_no_cached_route_to_its_address(ready_app, make_user, api, fake):
    """The proxy caches where a session listens for a second or so; the engine may give that
    address to the next session it starts, maybe another user's. Stopping a session, or the
    monitor seeing it end, drops the routes to it at once (seen in bench/soak: a request with
    the old session's cookie reached the new one at the reused address)."""
    from manager.proxy.resolver import ProxyTarget

    make_user("olga", "operator")
    olga = api("olga")
    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "calculator.py")
    run = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    batch = script_id(ready_app, "unit_converter.py")
    other = olga.post(f"/api/scripts/{batch}/execute", json={}).get_json()["execution_id"]
    tick(ready_app)
    routes = ready_app.extensions["sm_proxy"]._targets
    routes.put("olga's calculator", ProxyTarget("172.30.0.5", 8080, run), 0.0, ttl=1e9)
    routes.put("another session", ProxyTarget("172.30.0.6", 8080, other), 0.0, ttl=1e9)
    assert olga.post(f"/api/scripts/{sid}/stop", json={}).status_code == 200
    assert routes.get("olga's calculator", 1.0) is None
    assert routes.get("another session", 1.0) is not None
    fake.finish(other, 0)  # ended on its own: the monitor drops its routes
    tick(ready_app)
    assert routes.get("another session", 1.0) is None
