"""A script in a real container plants links, a hard link, a FIFO (and tries a device node) in
its workspace; the manager's file API must never read, write or delete through them, nor hang."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.catalog import group_id, script_id, tick

PLANTER = '''"""
ScriptsManager Metadata:
@description: Plant links and special files in the workspace
@required_level: operator
@parameters: [{"name": "victim", "type": "string", "required": true}]
@execution_timeout: 60
"""

import os

ws = WORKSPACE_PATH
os.symlink("/etc/passwd", os.path.join(ws, "passwd"))
os.symlink(PARAMETERS["victim"], os.path.join(ws, "victim"))
os.symlink("../../..", os.path.join(ws, "up"))
with open(os.path.join(ws, "mine.txt"), "w") as handle:
    handle.write("written by the script")
os.link(os.path.join(ws, "mine.txt"), os.path.join(ws, "hard.txt"))
os.mkfifo(os.path.join(ws, "pipe"))
try:
    os.mknod(os.path.join(ws, "null"), 0o020666, os.makedev(1, 3))
    print("device node created", flush=True)
except OSError as exc:
    print(f"device node refused: {exc}", flush=True)
print("planted", flush=True)
'''


def add_planter_group(groups_dir: Path) -> None:
    group = groups_dir / "plant_lab"
    group.mkdir()
    (group / "metadata.json").write_text(
        json.dumps(
            {
                "name": {"en": "Plant Lab"},
                "description": {"en": "A script that plants links"},
                "required_level": "operator",
                "conda_environment": "base",
                "limits": {"memory": "128m", "network": "none"},
            }
        )
    )
    (group / "planter.py").write_text(PLANTER)


@pytest.mark.docker
def test_planted_links_and_special_files_are_refused(
    app_config, groups_dir, backend, env_image, request
):
    from manager.catalog_app import run_discovery
    from tests.sessions.session_support import TEST_INSTANCE

    add_planter_group(groups_dir)
    app_config.update(SM_TEST_BACKEND=backend, SM_INSTANCE=TEST_INSTANCE)
    app = request.getfixturevalue("app")
    make_user, api = request.getfixturevalue("make_user"), request.getfixturevalue("api")
    run_discovery(app)
    make_user("olga", "operator")
    bob_id = make_user("bob", "operator")
    bob = api("bob")
    bob_project = bob.get("/api/projects/active").get_json()["project"]["id"]
    gid = group_id(app, "plant_lab")
    assert bob.post(f"/api/data/{gid}/{bob_project}/secret.txt", data=b"bob's secret",
                    content_type="text/plain").status_code == 201  # fmt: skip
    olga = api("olga")
    project = olga.get("/api/projects/active").get_json()["project"]["id"]
    victim = f"../../{bob_id}/{bob_project}"  # bob's workspace, seen from olga's on the host
    started = olga.post(
        f"/api/scripts/{script_id(app, 'planter.py')}/execute",
        json={"parameters": {"victim": victim}},
    )
    assert started.status_code == 201, started.get_json()
    run_id = started.get_json()["execution_id"]
    deadline = time.monotonic() + 90
    status = "starting"
    while status in ("starting", "running", "stopping"):
        assert time.monotonic() < deadline, f"still {status}"
        tick(app)
        status = olga.get(f"/api/executions/{run_id}").get_json()["status"]
        time.sleep(0.1)
    detail = olga.get(f"/api/logs/execution/{run_id}").get_json()
    assert status == "completed", detail.get("output")
    output = json.dumps(detail.get("output"))
    assert "planted" in output
    print(
        "device node:", "created" if "device node created" in output else "refused (no CAP_MKNOD)"
    )
    base = f"/api/data/{gid}/{project}"
    listing = {f["path"]: f for f in olga.get(f"{base}/files").get_json()["files"]}
    assert listing["passwd"]["type"] == "link" and listing["pipe"]["type"] == "other"
    planted = ["passwd", "victim/secret.txt", "up/etc/passwd", "hard.txt", "mine.txt", "pipe"]
    if "null" in listing:
        planted.append("null")
    for path in planted:
        started_at = time.monotonic()
        read = olga.get(f"{base}/{path}")
        assert read.status_code == 403, (path, read.status_code)
        assert time.monotonic() - started_at < 5  # a FIFO never blocks the request
        write = olga.post(f"{base}/{path}", data=b"overwritten", content_type="text/plain")
        assert write.status_code == 403, (path, write.get_json())
    for path in ("victim/secret.txt", "up/etc/passwd"):
        assert olga.delete(f"{base}/{path}").status_code == 403
    assert bob.get(f"/api/data/{gid}/{bob_project}/secret.txt").data == b"bob's secret"
    assert Path("/etc/passwd").read_text().startswith("root:")
    archive = olga.post(f"{base}/backup")
    assert archive.status_code == 200 and b"bob's secret" not in archive.data
    # The run's own files are listed with it; deleting a link removes only the link.
    artifacts = {a["path"] for a in detail["artifacts"]}
    assert {"mine.txt", "hard.txt"} <= artifacts
    assert olga.delete(f"{base}/victim").status_code == 200
    assert bob.get(f"/api/data/{gid}/{bob_project}/secret.txt").status_code == 200
