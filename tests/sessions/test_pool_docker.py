"""The warm pool on the real engine: standbys are filled from intent, handed to one run only,
to the right user and project, with the group's limits, and removed when idle, stale or
orphaned. Off (pool size 0) nothing is filled."""

from __future__ import annotations

import http.client
import re
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.catalog import group_id, script_id, tick

pytestmark = pytest.mark.docker

GROUP = "engineering_tools"
PROBE = "pool_probe.py"
PROBE_SOURCE = '''"""
ScriptsManager Metadata:
@description: Warm pool probe
@required_level: operator
@parameters: [{"name": "word", "type": "str", "default": "none"}]
"""
import os

print("probe", PARAMETERS["word"], os.getcwd(), flush=True)
'''
PROXY_IDS = re.compile(r"/project/(\d+)/script/(\d+)/user/(\d+)/")


@pytest.fixture
def pool_app(app_config, docker_client, env_image, groups_dir, tmp_path, request):
    """The app on a Docker backend with a capture folder, the catalog discovered, a probe
    script in the engineering group, admin ada, operators olga and bob."""
    from manager.catalog_app import run_discovery
    from tests.sessions.session_support import TEST_INSTANCE, docker_backend

    (groups_dir / GROUP / PROBE).write_text(PROBE_SOURCE, encoding="utf-8")
    backend = docker_backend(docker_client, tmp_path / "capture")
    app_config.update(SM_TEST_BACKEND=backend, SM_INSTANCE=TEST_INSTANCE)
    app = request.getfixturevalue("app")
    make_user = request.getfixturevalue("make_user")
    run_discovery(app)
    for name, level in (("ada", "admin"), ("olga", "operator"), ("bob", "operator")):
        make_user(name, level)
    yield app
    with app.app_context():  # the pool's own cleanup, as at shutdown
        from manager.extensions import db

        pool = app.extensions["sm_sessions"].service.pool
        pool.release_all(db.session)
        db.session.remove()


def set_pool_size(app, api, size: int) -> None:
    gid = group_id(app, GROUP)
    response = api("ada").put(f"/api/script-groups/{gid}/limits", json={"pool_size": size})
    assert response.status_code == 200, response.get_json()


def maintain(app, clock=None) -> None:
    from manager.extensions import db

    pool = app.extensions["sm_sessions"].service.pool
    if clock is not None:
        pool.clock = clock
    with app.app_context():
        pool.maintain(db.session)
        db.session.remove()


def slots(app, states=("creating", "standby")) -> list[Any]:
    from manager.extensions import db
    from manager.models import PoolSlot

    with app.app_context():
        rows = db.session.execute(select(PoolSlot).where(PoolSlot.state.in_(states))).scalars()
        found = [
            {"slot": r.slot, "user": r.user_id, "project": r.project_id, "state": r.state,
             "container": r.backend_state.get("container_id"), "uuid": r.execution_uuid}
            for r in rows
        ]  # fmt: skip
        db.session.remove()
    return found


def pool_containers(docker_client) -> list[Any]:
    from manager.sessions.backend import LABEL_INSTANCE
    from manager.sessions.spec import LABEL_POOL_SLOT
    from tests.sessions.session_support import TEST_INSTANCE

    return docker_client.containers.list(
        all=True, filters={"label": [f"{LABEL_INSTANCE}={TEST_INSTANCE}", LABEL_POOL_SLOT]}
    )


def open_run_form(client, app, filename: str, project_id: int | None = None) -> None:
    """What the browser does when the run form opens: it loads the script's presets."""
    sid = script_id(app, filename)
    query = f"?project_id={project_id}" if project_id else ""
    assert client.get(f"/api/scripts/{sid}/presets{query}").status_code == 200


def wait_status(app, client, run_id: str, wanted: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/executions/{run_id}").get_json()
        if body["status"] in wanted:
            return body
        assert time.monotonic() < deadline, f"run {run_id} stuck in {body['status']}"
        tick(app)
        time.sleep(0.1)


def debug_of(app, run_id: str) -> str:
    from manager.extensions import db
    from manager.models import Execution

    with app.app_context():
        row = db.session.execute(
            select(Execution).where(Execution.execution_uuid == run_id)
        ).scalar_one()
        text = row.debug_output or ""
        db.session.remove()
    return text


def test_pool_size_zero_fills_nothing(pool_app, api, docker_client):
    olga = api("olga")
    assert olga.client.get(f"/groups/{group_id(pool_app, GROUP)}").status_code == 200
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    tick(pool_app)
    assert slots(pool_app, ("creating", "standby", "handed", "removing")) == []
    assert pool_containers(docker_client) == []
    started = olga.post(f"/api/scripts/{script_id(pool_app, PROBE)}/execute", json={})
    assert started.status_code == 201
    run_id = started.get_json()["execution_id"]
    assert wait_status(pool_app, olga, run_id, ("completed", "failed"))["status"] == "completed"
    assert "starting container sm-session-" in debug_of(pool_app, run_id)
    maintain(pool_app)  # a session of the group ended: still no pool at size 0
    assert pool_containers(docker_client) == []


def test_handover_runs_the_script_with_its_output_captured(pool_app, api, docker_client, tmp_path):
    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [standby] = slots(pool_app)
    assert standby["state"] == "standby"
    capture = tmp_path / "capture"
    assert (capture / f"pool-{standby['slot']}").is_dir()
    started = olga.post(
        f"/api/scripts/{script_id(pool_app, PROBE)}/execute",
        json={"parameters": {"word": "warm"}},
    )
    assert started.status_code == 201, started.get_json()
    run_id = started.get_json()["execution_id"]
    # The capture folder was renamed to the run's; the container writes through the rename.
    assert not (capture / f"pool-{standby['slot']}").exists()
    assert (capture / run_id).is_dir()
    body = wait_status(pool_app, olga, run_id, ("completed", "failed"))
    assert body["status"] == "completed", debug_of(pool_app, run_id)
    assert f"handed the warm standby {standby['slot']}" in debug_of(pool_app, run_id)
    log = olga.get(f"/api/logs/execution/{run_id}/download").get_data(as_text=True)
    assert "probe warm /workspace" in log
    # The container is gone with its run; the pool refills from the intent.
    assert all(c.id != standby["container"] for c in pool_containers(docker_client))
    maintain(pool_app)
    [again] = slots(pool_app)
    assert again["slot"] != standby["slot"]


def get(host: str, port: int, path: str) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_handover_of_an_interactive_script_answers_through_the_proxy(pool_app, api, docker_client):
    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    assert olga.client.get(f"/groups/{group_id(pool_app, GROUP)}").status_code == 200
    maintain(pool_app)
    assert len(slots(pool_app)) >= 1  # the group page asks for interactive and batch kinds
    started = olga.post(f"/api/scripts/{script_id(pool_app, 'calculator.py')}/execute", json={})
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    assert "handed the warm standby" in debug_of(pool_app, body["execution_id"])
    project, script, user = (int(x) for x in PROXY_IDS.search(body["proxy_url"]).groups())
    resolver = pool_app.extensions["sm_proxy_resolver"]
    deadline = time.monotonic() + 30
    while True:
        with pool_app.app_context():
            try:
                target = resolver.resolve(user_id=user, is_admin=False, project_id=project,
                                          script_id=script, url_user_id=user)  # fmt: skip
                break
            except Exception:  # noqa: BLE001 - still starting
                assert time.monotonic() < deadline
                time.sleep(0.05)
    assert target.session_key == body["execution_id"]
    assert get(target.host, target.port, "/_sm/health") == 200
    tick(pool_app)  # the orphan sweep keeps a handed-over container: it serves a live run
    assert wait_status(pool_app, olga, body["execution_id"], ("running",))["status"] == "running"
    assert olga.post(f"/api/scripts/{script}/stop", json={}).status_code == 200
    wait_status(pool_app, olga, body["execution_id"], ("terminated",))


def test_a_standby_is_handed_to_one_run_only(pool_app, api, docker_client):
    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [standby] = slots(pool_app)
    clients = [api("olga"), api("olga")]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]
    sid = script_id(pool_app, PROBE)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = clients[index].post(
            f"/api/scripts/{sid}/execute", json={"parameters": {"word": str(index)}}
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    run_ids = []
    for response in results:
        assert response is not None and response.status_code == 201, response
        run_ids.append(response.get_json()["execution_id"])
    debugs = [debug_of(pool_app, run_id) for run_id in run_ids]
    handed = [d for d in debugs if f"handed the warm standby {standby['slot']}" in d]
    cold = [d for d in debugs if "starting container sm-session-" in d]
    assert len(handed) == 1 and len(cold) == 1, debugs
    for run_id in run_ids:
        body = wait_status(pool_app, olga, run_id, ("completed", "failed"))
        assert body["status"] == "completed", debug_of(pool_app, run_id)


def test_a_standby_serves_only_its_user_and_project(pool_app, api, docker_client):
    set_pool_size(pool_app, api, 1)
    olga, bob = api("olga"), api("bob")
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [standby] = slots(pool_app)
    sid = script_id(pool_app, PROBE)
    # Bob, same script, same group: cold.
    bob_run = bob.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    assert "handed the warm standby" not in debug_of(pool_app, bob_run)
    # Olga in another project: cold.
    other = olga.post("/api/projects", json={"project_name": "other"})
    assert other.status_code == 201, other.get_json()
    other_id = other.get_json()["project"]["id"]
    other_run = olga.post(f"/api/scripts/{sid}/execute", json={"project_id": other_id}).get_json()[
        "execution_id"
    ]
    assert "handed the warm standby" not in debug_of(pool_app, other_run)
    assert [s["slot"] for s in slots(pool_app)] == [standby["slot"]]
    # Olga in the project the standby was made for: handed.
    mine = olga.post(
        f"/api/scripts/{sid}/execute", json={"project_id": standby["project"]}
    ).get_json()["execution_id"]
    assert f"handed the warm standby {standby['slot']}" in debug_of(pool_app, mine)
    for run_id, client in ((bob_run, bob), (other_run, olga), (mine, olga)):
        assert wait_status(pool_app, client, run_id, ("completed", "failed"))["status"] == (
            "completed"
        )
    log = bob.get(f"/api/logs/execution/{bob_run}/download").get_data(as_text=True)
    assert "probe none /workspace" in log


def test_a_standby_has_the_cold_containers_limits_and_mounts(pool_app, api, docker_client):
    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    calculator = script_id(pool_app, "calculator.py")
    open_run_form(olga, pool_app, "calculator.py")
    maintain(pool_app)
    [standby] = slots(pool_app)
    pooled = docker_client.containers.get(standby["container"]).attrs
    # Pool size back to 0: the standby goes, and a run of the same script starts cold.
    set_pool_size(pool_app, api, 0)
    maintain(pool_app)
    assert pool_containers(docker_client) == []
    run = olga.post(f"/api/scripts/{calculator}/execute", json={}).get_json()
    assert "starting container sm-session-" in debug_of(pool_app, run["execution_id"])
    # Filtered by the engine: a listing of every container inspects each, and one of another
    # test's may go between the listing and its inspect (404).
    label = f"io.scriptsmanager.execution={run['execution_id']}"
    [cold] = [c.attrs for c in docker_client.containers.list(all=True, filters={"label": label})]
    keys = ("Memory", "MemorySwap", "CpuPeriod", "CpuQuota", "NanoCpus", "PidsLimit",
            "ReadonlyRootfs", "CapDrop", "SecurityOpt", "Tmpfs", "Init", "ShmSize", "OomScoreAdj",
            "IpcMode", "NetworkMode", "Privileged", "PortBindings", "LogConfig")  # fmt: skip
    assert {k: pooled["HostConfig"].get(k) for k in keys} == {
        k: cold["HostConfig"].get(k) for k in keys
    }
    assert pooled["HostConfig"]["Memory"] == 256 * 1024 * 1024  # the group's metadata.json
    # The group's 0.5 CPU: half of each period.
    assert pooled["HostConfig"]["CpuQuota"] * 2 == pooled["HostConfig"]["CpuPeriod"]
    assert pooled["Config"]["User"] == cold["Config"]["User"] == "10001:10001"

    def mounts(attrs: dict) -> dict[str, tuple[str, bool]]:
        return {m["Destination"]: (m["Source"], m["RW"]) for m in attrs["Mounts"]}

    pooled_mounts, cold_mounts = mounts(pooled), mounts(cold)
    assert pooled_mounts["/scripts"] == cold_mounts["/scripts"]
    assert pooled_mounts["/workspace"] == cold_mounts["/workspace"]
    assert pooled_mounts["/workspace"][1] is True and pooled_mounts["/scripts"][1] is False
    assert "/run/sm/context.json" not in pooled_mounts
    assert pooled_mounts["/run/sm/slot"][1] is False
    assert set(pooled_mounts) - {"/run/sm/slot"} == set(cold_mounts) - {"/run/sm/context.json"}
    olga.post(f"/api/scripts/{calculator}/stop", json={})
    wait_status(pool_app, olga, run["execution_id"], ("terminated",))


def test_standbys_are_trimmed_when_idle_stale_or_their_user_is_deactivated(
    pool_app, api, docker_client
):
    from manager.models import utcnow

    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [first] = slots(pool_app)
    # Idle past SM_POOL_IDLE_SECONDS (300): removed, and the intent is as old: no refill.
    maintain(pool_app, clock=lambda: utcnow() + timedelta(seconds=301))
    assert slots(pool_app, ("creating", "standby", "removing")) == []
    assert pool_containers(docker_client) == []

    # Limits changed: the standby goes, one with the new limits comes (the intent is fresh).
    maintain(pool_app, clock=utcnow)
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [second] = slots(pool_app)
    gid = group_id(pool_app, GROUP)
    changed = api("ada").put(f"/api/script-groups/{gid}/limits", json={"memory": "300m"})
    assert changed.status_code == 200
    maintain(pool_app)
    [third] = slots(pool_app)
    assert third["slot"] != second["slot"]
    assert docker_client.containers.get(third["container"]).attrs["HostConfig"]["Memory"] == (
        300 * 1024 * 1024
    )
    assert all(c.id != second["container"] for c in pool_containers(docker_client))

    # The image changed (a rebuilt environment has a new tag): the standby goes; the new tag
    # is not built here, so nothing replaces it.
    service = pool_app.extensions["sm_sessions"].service
    real = service.image_for
    service.image_for = lambda env: real(env) + "-rebuilt"
    try:
        maintain(pool_app)
    finally:
        service.image_for = real
    assert slots(pool_app) == []
    maintain(pool_app)
    [fourth] = slots(pool_app)

    # The user is deactivated: the standby goes.
    from manager.extensions import db
    from manager.models import User

    with pool_app.app_context():
        user = db.session.execute(select(User).where(User.username == "olga")).scalar_one()
        user.is_active = False
        db.session.commit()
        db.session.remove()
    maintain(pool_app)
    assert slots(pool_app) == []
    assert all(c.id != fourth["container"] for c in pool_containers(docker_client))


def test_a_restart_removes_the_former_managers_standbys(pool_app, api, docker_client):
    from manager.sessions.backend import LABEL_INSTANCE, LABEL_MANAGED
    from manager.sessions.spec import LABEL_POOL_SLOT
    from tests.sessions.session_support import TEST_INSTANCE

    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [old] = slots(pool_app)
    pool = pool_app.extensions["sm_sessions"].service.pool
    pool.owner = "a-new-manager-process"  # what a restarted manager is
    maintain(pool_app)  # removes the old one, refills on the (still fresh) intent
    [new] = slots(pool_app)
    assert new["slot"] != old["slot"]
    assert all(c.id != old["container"] for c in pool_containers(docker_client))
    # A pool container nobody has a row for (the manager died while creating it): the sweep.
    stray = docker_client.containers.create(
        docker_client.containers.get(new["container"]).image.id,
        command=["sleep", "60"],
        entrypoint=[],
        labels={LABEL_MANAGED: "true", LABEL_INSTANCE: TEST_INSTANCE,
                LABEL_POOL_SLOT: "0" * 32, "io.scriptsmanager.execution": "pool-" + "0" * 32},
    )  # fmt: skip
    tick(pool_app)
    remaining = {c.id for c in pool_containers(docker_client)}
    assert stray.id not in remaining and new["container"] in remaining


def test_the_capture_mount_follows_a_renamed_folder(backend, env_image, tmp_path, docker_client):
    """The engine keeps a bind mount on the folder's inode: renamed on the host after the
    start, the container's writes land in the new name."""
    import uuid

    from manager.sessions.docker import DockerBackend
    from manager.sessions.spec import build_pool_spec
    from tests.sessions.session_support import TEST_BRIDGES, TEST_INSTANCE, TEST_LIMITS, TEST_PREFIX

    capture = tmp_path / "capture"
    engine = DockerBackend(docker_client, instance=TEST_INSTANCE, network_prefix=TEST_PREFIX,
                           bridge_prefix=TEST_BRIDGES, capture_dir=capture)  # fmt: skip
    slot = uuid.uuid4().hex
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "s.py").write_text("print('after the rename', flush=True)\n")
    (tmp_path / "ws").mkdir()
    (tmp_path / "slot").mkdir()
    spec = build_pool_spec(
        slot=slot, image=env_image, script_host_dir=str(tmp_path / "scripts"),
        workspace_host_dir=str(tmp_path / "ws"), slot_host_dir=str(tmp_path / "slot"),
        limits=TEST_LIMITS, user_id=1, group_id=1, project_id=1, interactive=False,
        instance=TEST_INSTANCE,
    )  # fmt: skip
    handle = engine.start(spec)
    try:
        time.sleep(0.5)  # the runner is up and waiting for its context
        run_id = str(uuid.uuid4())
        engine.rename_capture(f"pool-{slot}", run_id)
        from manager.sessions.backend import Handle
        from manager.sessions.workspace import write_context_file

        write_context_file(tmp_path / "slot" / ".partial", {"script_path": "/scripts/s.py"})
        Path(tmp_path / "slot" / ".partial").replace(tmp_path / "slot" / "context.json")
        run = Handle(execution_uuid=run_id, state=handle.state)
        deadline = time.monotonic() + 30
        while engine.poll(run) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert engine.poll(run).exit_code == 0
        assert [line.text for line in engine.logs(run)] == ["after the rename"]
        assert not (capture / f"pool-{slot}").exists()
    finally:
        engine.remove(Handle(execution_uuid=run_id, state=handle.state))


def test_filling_stops_at_the_session_caps_and_shutdown_empties_the_pool(
    pool_app, api, docker_client
):
    import dataclasses

    set_pool_size(pool_app, api, 2)
    olga = api("olga")
    pool = pool_app.extensions["sm_sessions"].service.pool
    full = pool.config
    # SM_MAX_SESSIONS_PER_USER=1: one standby fits, a second would pass the cap.
    pool.config = dataclasses.replace(full, max_per_user=1)
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    assert len(slots(pool_app)) == 1
    # The server-wide cap already reached: nothing more.
    pool.config = dataclasses.replace(full, max_concurrent=1)
    maintain(pool_app)
    assert len(slots(pool_app)) == 1
    # Not enough free host memory: nothing more.
    pool.config = full
    pool.memory_available = lambda: 128 * 1024 * 1024
    maintain(pool_app)
    assert len(slots(pool_app)) == 1
    pool.memory_available = lambda: None
    maintain(pool_app)
    assert len(slots(pool_app)) == 2
    # At shutdown the manager removes its standbys.
    from manager.extensions import db

    with pool_app.app_context():
        pool.release_all(db.session)
        db.session.remove()
    assert slots(pool_app, ("creating", "standby", "removing")) == []
    assert pool_containers(docker_client) == []


def test_a_standby_whose_container_died_is_replaced_not_handed_out(pool_app, api, docker_client):
    set_pool_size(pool_app, api, 1)
    olga = api("olga")
    open_run_form(olga, pool_app, PROBE)
    maintain(pool_app)
    [dead] = slots(pool_app)
    docker_client.containers.get(dead["container"]).kill()
    maintain(pool_app)
    [fresh] = slots(pool_app)
    assert fresh["slot"] != dead["slot"]
    assert all(c.id != dead["container"] for c in pool_containers(docker_client))
