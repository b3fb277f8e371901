"""Workspace files over /api/data: who reaches them, paths, limits, planted links and FIFOs."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from tests.support.catalog import group_id

GROUP = "data_processing"


@pytest.fixture
def olga(ready_app, make_user, api):
    """Olga (operator) with her default project; returns (client, base URL, workspace path)."""
    uid = make_user("olga", "operator")
    client = api("olga")
    project = client.get("/api/projects/active").get_json()["project"]
    gid = group_id(ready_app, GROUP)
    root = Path(ready_app.config["SM_DATA_DIR"]) / "script_groups" / GROUP / str(uid)
    return client, f"/api/data/{gid}/{project['id']}", root / str(project["id"])


def test_owner_uploads_lists_downloads_and_deletes(olga):
    client, base, root = olga
    sent = client.post(f"{base}/results/out.csv", data={"file": (io.BytesIO(b"a,b\n1,2\n"), "x")})
    assert sent.status_code == 201, sent.get_json()
    assert (root / "results" / "out.csv").read_bytes() == b"a,b\n1,2\n"
    raw = client.post(f"{base}/notes.txt", data=b"raw body", content_type="text/plain")
    assert raw.status_code == 201
    listing = client.get(f"{base}/files").get_json()
    by_path = {f["path"]: f for f in listing["files"]}
    assert by_path["results"]["type"] == "folder"
    assert by_path["results/out.csv"]["size"] == 8 and by_path["results/out.csv"]["modified"]
    assert listing["writable"] and listing["quota_bytes"] > 0
    got = client.get(f"{base}/results/out.csv")
    assert got.status_code == 200 and got.data == b"a,b\n1,2\n"
    assert got.headers["Content-Disposition"].startswith("attachment")
    preview = client.get(f"{base}/results/out.csv?inline=1")
    assert preview.headers["Content-Type"].startswith("text/plain")
    assert "sandbox" in preview.headers["Content-Security-Policy"]
    (root / "page.html").write_text("<script>alert(1)</script>")
    html = client.get(f"{base}/page.html?inline=1")  # never rendered on the manager's origin
    assert html.headers["Content-Type"] == "application/octet-stream"
    assert client.delete(f"{base}/results").get_json()["kind"] == "folder"
    assert not (root / "results").exists()
    missing = client.delete(f"{base}/results/out.csv")
    assert missing.status_code == 404 and "no file" in missing.get_json()["message"]


def test_json_files_are_read_and_written_through_the_manager(olga):
    client, base, root = olga
    saved = client.post(f"{base}/config/settings.json", json={"threshold": 3, "name": "ñ"})
    assert saved.status_code == 201
    assert client.get(f"{base}/config/settings.json?format=json").get_json()["data"] == {
        "threshold": 3,
        "name": "ñ",
    }
    wrong = client.post(f"{base}/settings.txt", json={"a": 1})
    assert wrong.status_code == 400 and ".json" in wrong.get_json()["message"]
    (root / "broken.json").write_text("{nope")
    broken = client.get(f"{base}/broken.json?format=json")
    assert broken.status_code == 422 and "not valid JSON" in broken.get_json()["message"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("../other/secret.txt", "'..'"),
        ("a/../../x", "'..'"),
        ("a%00b", "NUL"),
        ("a%5Cb", "'/'"),
        ("a%01b", "control"),
        ("/".join(["d"] * 40), "deeper"),
        ("x" * 300, "longer"),
    ],
)
def test_bad_paths_are_refused_with_a_reason(olga, path, words):
    client, base, _ = olga
    for response in (
        client.get(f"{base}/{path}"),
        client.post(f"{base}/{path}", data=b"x", content_type="text/plain"),
        client.delete(f"{base}/{path}"),
    ):
        assert response.status_code == 400, (path, response.get_json())
        assert words in response.get_json()["message"]


def test_planted_links_fifos_and_hard_links_are_never_followed(olga, tmp_path):
    client, base, root = olga
    root.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    os.symlink("/etc/passwd", root / "passwd")
    os.symlink(outside, root / "elsewhere")
    os.mkfifo(root / "pipe")
    (root / "real.txt").write_text("mine")
    os.link(root / "real.txt", root / "alias.txt")
    for name, words in (
        ("passwd", "symbolic link"),
        ("elsewhere/secret.txt", "symbolic link"),
        ("pipe", "FIFO"),
        ("alias.txt", "hard link"),
    ):
        read = client.get(f"{base}/{name}")  # a FIFO must answer at once, not hang
        assert read.status_code == 403 and words in read.get_json()["message"], name
        write = client.post(f"{base}/{name}", data=b"overwritten", content_type="text/plain")
        assert write.status_code == 403 and words in write.get_json()["message"], name
    if os.geteuid() == 0:  # a device node (containers cannot make one: no CAP_MKNOD)
        os.mknod(root / "zero", 0o020666, os.makedev(1, 5))
        device = client.get(f"{base}/zero")
        assert device.status_code == 403 and "device" in device.get_json()["message"]
    assert client.delete(f"{base}/elsewhere/secret.txt").status_code == 403
    assert (outside / "secret.txt").read_text() == "not yours"
    assert Path("/etc/passwd").read_text().startswith("root:")
    assert (root / "real.txt").read_text() == "mine"
    # Deleting a link removes the link itself, never what it points to.
    assert client.delete(f"{base}/elsewhere").get_json()["kind"] == "a symbolic link"
    assert (outside / "secret.txt").exists() and not (root / "elsewhere").exists()
    listing = {f["path"]: f["type"] for f in client.get(f"{base}/files").get_json()["files"]}
    assert listing["passwd"] == "link" and listing["pipe"] == "other"
    backup = client.post(f"{base}/backup")
    archive = zipfile.ZipFile(io.BytesIO(backup.data))
    assert "real.txt" not in archive.namelist()  # hard-linked: skipped like the link and FIFO
    assert "passwd" not in archive.namelist() and "pipe" not in archive.namelist()
    assert "passwd (link)" in archive.read("SKIPPED.txt").decode()


def test_backup_streams_a_zip_of_the_workspace(olga):
    client, base, root = olga
    client.post(f"{base}/a/b/c.txt", data=b"deep", content_type="text/plain")
    client.post(f"{base}/top.bin", data=os.urandom(300_000), content_type="text/plain")
    response = client.post(f"{base}/backup")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert archive.read("a/b/c.txt") == b"deep"
    assert len(archive.read("top.bin")) == 300_000


def test_others_are_refused_and_admins_follow_the_setting(olga, make_user, api, ready_app):
    client, base, _ = olga
    client.post(f"{base}/mine.txt", data=b"olga's", content_type="text/plain")
    make_user("bob", "operator")
    bob = api("bob")
    for response in (
        bob.get(f"{base}/files"),
        bob.get(f"{base}/mine.txt"),
        bob.post(f"{base}/mine.txt", data=b"bob", content_type="text/plain"),
        bob.delete(f"{base}/mine.txt"),
        bob.post(f"{base}/backup"),
    ):
        assert response.status_code == 404 and "no project" in response.get_json()["message"]
    anonymous = api().get(f"{base}/files")
    assert anonymous.status_code == 401
    make_user("ada", "admin")
    ada = api("ada")
    assert ada.get(f"{base}/mine.txt").data == b"olga's"
    ready_app.config["SM_ADMIN_CAN_ACCESS_ALL_DATA"] = False
    refused = ada.get(f"{base}/mine.txt")
    assert (
        refused.status_code == 403
        and "SM_ADMIN_CAN_ACCESS_ALL_DATA" in refused.get_json()["message"]
    )
    unknown = client.get(base.rsplit("/", 2)[0] + "/9999/1/files")
    assert unknown.status_code == 404 and "group" in unknown.get_json()["message"]


def test_viewers_read_but_do_not_change_their_files(ready_app, make_user, api):
    from manager.extensions import db
    from manager.models import ScriptGroup

    with ready_app.app_context():  # a group open to viewers
        db.session.get(ScriptGroup, group_id(ready_app, GROUP)).required_level = "viewer"
        db.session.commit()
    make_user("vera", "viewer")
    vera = api("vera")
    project = vera.get("/api/projects/active").get_json()["project"]
    gid = group_id(ready_app, GROUP)
    base = f"/api/data/{gid}/{project['id']}"
    assert vera.get(f"{base}/files").get_json()["writable"] is False
    refused = vera.post(f"{base}/x.txt", data=b"x", content_type="text/plain")
    assert refused.status_code == 403 and "Viewers" in refused.get_json()["message"]


def test_upload_limit_and_workspace_quota(app_config, fake, request, make_user, api):
    from manager import create_app
    from manager.catalog_app import run_discovery

    # The app-wide request cap is lower than the upload limit: uploads get the upload limit.
    app_config.update(
        SM_MAX_UPLOAD_MB=1, SM_DEFAULT_WORKSPACE_QUOTA="2m", MAX_CONTENT_LENGTH=512 * 1024
    )
    app = create_app(app_config)
    run_discovery(app)
    request.getfixturevalue("app")  # empties the tables for this app too
    uid = make_user("olga", "operator")
    client = api("olga")
    client.client = app.test_client()
    client.login("olga")
    project = client.get("/api/projects/active").get_json()["project"]
    base = f"/api/data/{group_id(app, GROUP)}/{project['id']}"
    big = client.post(f"{base}/big.bin", data=b"x" * (1024 * 1024 + 1), content_type="text/plain")
    assert big.status_code == 413 and "SM_MAX_UPLOAD_MB" in big.get_json()["message"]
    form = client.post(f"{base}/big.bin", data={"file": (io.BytesIO(b"x" * 1_200_000), "b")})
    assert form.status_code == 413 and "upload limit" in form.get_json()["message"]
    root = Path(app.config["SM_DATA_DIR"]) / "script_groups" / GROUP / str(uid) / str(project["id"])
    assert [p.name for p in root.iterdir()] == []  # nothing half-written kept
    for n in range(2):
        ok = client.post(f"{base}/part{n}.bin", data=os.urandom(900_000), content_type="text/plain")
        assert ok.status_code == 201
    over = client.post(f"{base}/part2.bin", data=os.urandom(500_000), content_type="text/plain")
    assert over.status_code == 413 and "quota" in over.get_json()["message"]
    (root / "fill.bin").write_bytes(os.urandom(400_000))
    full = client.post(f"{base}/one.txt", data=b"1", content_type="text/plain")
    assert full.status_code == 507 and full.get_json()["limit"] == "workspace_quota"
