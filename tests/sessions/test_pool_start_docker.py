"""The warm pool's fast start on the real engine: a standby says when its runner is ready, a
ready one is handed over first, its replacement starts after the hand-over (not during it),
and the run's answer carries a ticket straight into the session's host."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.sessions import test_pool_docker
from tests.sessions.test_pool_docker import (
    PROBE,
    debug_of,
    maintain,
    open_run_form,
    set_pool_size,
    slots,
    wait_status,
)
from tests.support.catalog import script_id

pytestmark = pytest.mark.docker
pool_app = test_pool_docker.pool_app  # the fixture, shared with the pool's other tests

ENV_PROBE = '''"""
ScriptsManager Metadata:
@description: Warm pool environment probe
@required_level: operator
"""
import os

print("marker" if any("READY" in name for name in os.environ) else "clean", flush=True)
'''


def ready_file(capture: Path, slot: str) -> Path:
    return capture / f"pool-{slot}" / "standby-ready"


def wait_ready(capture: Path, slot: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready_file(capture, slot).exists():
        assert time.monotonic() < deadline, f"standby {slot} never said it was ready"
        time.sleep(0.05)


def test_a_ready_standby_is_handed_first_and_the_script_never_sees_the_marker(
    pool_app, api, docker_client, tmp_path, groups_dir
):
    (groups_dir / "engineering_tools" / "env_probe.py").write_text(ENV_PROBE, encoding="utf-8")
    from manager.catalog_app import run_discovery

    run_discovery(pool_app)
    set_pool_size(pool_app, api, 2)
    olga = api("olga")
    open_run_form(olga, pool_app, "env_probe.py")
    maintain(pool_app)
    older, newer = slots(pool_app)  # oldest first
    capture = tmp_path / "capture"
    for standby in (older, newer):
        wait_ready(capture, standby["slot"])
    ready_file(capture, older["slot"]).unlink()  # the older one as if still importing Flask
    pool = pool_app.extensions["sm_sessions"].service.pool
    assert not pool.is_ready(older["slot"]) and pool.is_ready(newer["slot"])

    sid = script_id(pool_app, "env_probe.py")
    run_id = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    assert f"handed the warm standby {newer['slot']}" in debug_of(pool_app, run_id)
    assert wait_status(pool_app, olga, run_id, ("completed", "failed"))["status"] == "completed"
    log = olga.get(f"/api/logs/execution/{run_id}/download").get_data(as_text=True)
    assert "clean" in log and "marker" not in log, log


def test_the_replacement_starts_after_the_hand_over(pool_app, api, docker_client, monkeypatch):
    from manager.sessions import pool as pool_module

    monkeypatch.setattr(pool_module, "REFILL_DELAY", 0.5)
    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [standby] = slots(pool_app)
    pool = pool_app.extensions["sm_sessions"].service.pool
    pool.wake.clear()
    sid = script_id(pool_app, PROBE)
    run_id = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    assert f"handed the warm standby {standby['slot']}" in debug_of(pool_app, run_id)
    assert not pool.wake.is_set()  # the filler is not woken during the hand-over
    maintain(pool_app)
    assert slots(pool_app) == []  # nor does a pass meanwhile start the replacement
    assert pool.wake.wait(5)  # woken once the delay is over
    time.sleep(0.1)
    maintain(pool_app)
    [again] = slots(pool_app)
    assert again["slot"] != standby["slot"]
    assert wait_status(pool_app, olga, run_id, ("completed", "failed"))["status"] == "completed"


def test_a_pooled_interactive_run_is_entered_with_the_answers_ticket(pool_app, api, docker_client):
    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    calculator = script_id(pool_app, "calculator.py")
    open_run_form(olga, pool_app, "calculator.py")
    maintain(pool_app)
    assert len(slots(pool_app)) == 1
    body = olga.post(f"/api/scripts/{calculator}/execute", json={}).get_json()
    assert "handed the warm standby" in debug_of(pool_app, body["execution_id"])
    assert "/__sm/enter?ticket=" in body["enter_url"]
    entered = olga.client.get(body["enter_url"])
    assert entered.status_code == 302 and entered.headers["Set-Cookie"].startswith("sm_host=")
    deadline = time.monotonic() + 30
    while True:  # the tests' SM_PROXY_START_WAIT is 0.2 s: a 503 asks to come back
        page = olga.client.get(body["proxy_url"], headers={"Accept": "text/html"})
        if page.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    assert olga.client.get(body["enter_url"]).status_code == 403  # single use
    assert olga.post(f"/api/scripts/{calculator}/stop", json={}).status_code == 200
    wait_status(pool_app, olga, body["execution_id"], ("terminated",))
