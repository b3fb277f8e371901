"""The per-group workspace quota (``limits.workspace_quota``, default SM_DEFAULT_WORKSPACE_QUOTA):
a run is refused at or over it, a run writing past it is stopped, nobody's files are deleted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from manager.models import Execution, ScriptGroup
from manager.sessions.limits import Limits, parse_limits
from manager.sessions.workspace import disk_usage
from tests.support.catalog import script_id, tick

FILLER = '''"""
ScriptsManager Metadata:
@description: Write 1 MiB files into the workspace, one every 50 ms
@required_level: operator
@parameters: [{"name": "megabytes", "type": "int", "default": 64, "min": 1, "max": 1024}]
@execution_timeout: 120
"""

import os
import time

for n in range(int(PARAMETERS["megabytes"])):
    with open(os.path.join(WORKSPACE_PATH, f"chunk_{n:03d}.bin"), "wb") as handle:
        handle.write(os.urandom(1024 * 1024))
    print(f"wrote {n + 1} MiB", flush=True)
    time.sleep(0.05)
print("done", flush=True)
'''


def add_quota_group(groups_dir: Path, quota: str = "8m") -> None:
    group = groups_dir / "quota_lab"
    group.mkdir()
    (group / "metadata.json").write_text(
        json.dumps(
            {
                "name": {"en": "Quota Lab"},
                "description": {"en": "Scripts that fill their workspace"},
                "required_level": "operator",
                "conda_environment": "base",
                "limits": {"memory": "128m", "network": "none", "workspace_quota": quota},
            }
        )
    )
    (group / "filler.py").write_text(FILLER)


def test_workspace_quota_parses_and_has_a_default():
    assert Limits().workspace_quota == "5g"
    assert parse_limits({"workspace_quota": "1g"}).workspace_quota_bytes == 2**30
    with pytest.raises(ValueError, match="workspace_quota"):
        parse_limits({"workspace_quota": "lots"})
    with pytest.raises(ValueError, match="workspace_quota"):
        parse_limits({"workspace_quota": "10k"})


def test_default_quota_comes_from_the_setting(app_config, groups_dir, fake):
    from manager import create_app

    application = create_app({**app_config, "SM_DEFAULT_WORKSPACE_QUOTA": "3g"})
    service = application.extensions["sm_sessions"].service
    assert service.config.default_limits.workspace_quota == "3g"


def test_a_run_is_refused_when_the_workspace_is_at_its_quota(
    app_config, groups_dir, fake, request, make_user, api
):
    from manager.catalog_app import run_discovery

    add_quota_group(groups_dir, quota="6m")
    app = request.getfixturevalue("app")
    run_discovery(app)
    olga_id = make_user("olga", "operator")
    bob_id = make_user("bob", "operator")
    olga = api("olga")
    sid = script_id(app, "filler.py")
    data = Path(app_config["SM_DATA_DIR"]) / "script_groups" / "quota_lab"
    (data / str(olga_id) / "1").mkdir(parents=True)
    (data / str(olga_id) / "1" / "big.bin").write_bytes(b"x" * (7 * 2**20))
    refused = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert refused.status_code == 507, refused.get_json()
    body = refused.get_json()
    assert body["limit"] == "workspace_quota" and "Quota Lab" in body["message"]
    assert "7.0 MiB" in body["message"] and "6.0 MiB" in body["message"]
    assert not fake.started
    assert (data / str(olga_id) / "1" / "big.bin").stat().st_size == 7 * 2**20  # kept
    # Another user of the group is not affected by olga's files.
    assert api("bob").post(f"/api/scripts/{sid}/execute", json={}).status_code == 201
    assert bob_id != olga_id


def test_metadata_json_accepts_workspace_quota(app_config, groups_dir, fake, request):
    from manager.catalog_app import run_discovery
    from manager.extensions import db

    add_quota_group(groups_dir, quota="1g")
    app = request.getfixturevalue("app")
    run_discovery(app)
    with app.app_context():
        group = db.session.execute(
            select(ScriptGroup).where(ScriptGroup.directory_path == "quota_lab")
        ).scalar_one()
        assert group.invalid_reason is None
        assert (group.metadata_json or {})["limits"]["workspace_quota"] == "1g"


# ------------------------------------------------------------------ a real container


@pytest.mark.docker
def test_a_container_writing_past_the_quota_is_stopped(
    app_config, groups_dir, backend, env_image, request
):
    from manager.catalog_app import run_discovery
    from manager.extensions import db
    from tests.sessions.session_support import TEST_INSTANCE

    add_quota_group(groups_dir, quota="8m")
    app_config.update(SM_TEST_BACKEND=backend, SM_INSTANCE=TEST_INSTANCE)
    app = request.getfixturevalue("app")  # after the backend is set: it builds the app
    make_user, api = request.getfixturevalue("make_user"), request.getfixturevalue("api")
    run_discovery(app)
    app.extensions["sm_sessions"].monitor.quota_every = 0.2
    olga_id = make_user("olga", "operator")
    bob_id = make_user("bob", "operator")
    data = Path(app_config["SM_DATA_DIR"]) / "script_groups" / "quota_lab"
    bobs = data / str(bob_id) / "7"
    bobs.mkdir(parents=True)
    (bobs / "keep.txt").write_text("bob's")
    olga = api("olga")
    sid = script_id(app, "filler.py")
    started = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert started.status_code == 201, started.get_json()
    run_id = started.get_json()["execution_id"]
    deadline = time.monotonic() + 90
    status = "running"
    while status in ("starting", "running", "stopping"):
        assert time.monotonic() < deadline, f"still {status}"
        tick(app)
        status = olga.get(f"/api/executions/{run_id}").get_json()["status"]
        time.sleep(0.1)
    with app.app_context():
        row = db.session.execute(
            select(Execution).where(Execution.execution_uuid == run_id)
        ).scalar_one()
        debug = row.debug_output
    assert status == "failed", debug
    assert "workspace_quota" in debug and "Quota Lab" in debug
    mine = data / str(olga_id)
    used = disk_usage(mine)
    print(f"workspace when the run was stopped: {used / 2**20:.1f} MiB (quota 8 MiB)")
    # Stopped soon after the quota (8 MiB), far from the 64 MiB it would have written.
    assert 8 * 2**20 < used < 40 * 2**20, used
    assert len(list(mine.rglob("chunk_*.bin"))) >= 8  # nothing deleted
    assert (bobs / "keep.txt").read_text() == "bob's"  # another user's folder untouched
    assert sorted(p.name for p in data.iterdir()) == sorted([str(olga_id), str(bob_id)])
    again = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert again.status_code == 507 and "workspace_quota" in again.get_json()["message"]
    assert backend.list_sessions() == [] or all(
        h.execution_uuid != run_id for h in backend.list_sessions()
    )
