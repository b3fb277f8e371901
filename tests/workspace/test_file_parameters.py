"""The ``file`` parameter type: validated as a workspace path; checked against the workspace."""

from __future__ import annotations

import io
import os

from manager.catalog.schema import validate_parameter_definitions, validate_parameter_values
from manager.workspace.params import check_file_parameters
from tests.support.catalog import script_id

DEFINITIONS, _ = validate_parameter_definitions([{"name": "data", "type": "file"}])


def test_values_are_workspace_paths():
    ok, errors = validate_parameter_values(DEFINITIONS, {"data": "uploads/x/a.csv"})
    assert ok == {"data": "/workspace/uploads/x/a.csv"} and errors == {}
    for bad in ("../etc/passwd", "/etc/passwd", "a\x00b", 3):
        assert "data" in validate_parameter_values(DEFINITIONS, {"data": bad})[1], bad


def test_the_uploaded_file_must_be_a_regular_file_of_the_workspace(tmp_path):
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "a.csv").write_text("a")
    os.symlink("/etc/passwd", tmp_path / "uploads" / "link.csv")
    check = check_file_parameters
    assert check(tmp_path, DEFINITIONS, {"data": "/workspace/uploads/a.csv"}) == {}
    assert (
        "upload it again" in check(tmp_path, DEFINITIONS, {"data": "/workspace/nope.csv"})["data"]
    )
    assert (
        "symbolic link"
        in check(tmp_path, DEFINITIONS, {"data": "/workspace/uploads/link.csv"})["data"]
    )


def test_parameter_file_upload_api(ready_app, make_user, api):
    make_user("olga", "operator")
    olga = api("olga")
    sid = script_id(ready_app, "csv_summary.py")
    sent = olga.post(
        f"/api/scripts/{sid}/parameter-files", data={"file": (io.BytesIO(b"a,b\n"), "in put.csv")}
    )
    assert sent.status_code == 201, sent.get_json()
    body = sent.get_json()
    assert body["path"] == f"/workspace/{body['workspace_path']}" and body["path"].endswith(
        "/in put.csv"
    )
    empty = olga.post(f"/api/scripts/{sid}/parameter-files", data={"file": (io.BytesIO(b""), "")})
    assert empty.status_code == 400 and "Choose a file" in empty.get_json()["message"]
    raw = olga.post(f"/api/scripts/{sid}/parameter-files", data=b"x", content_type="text/plain")
    assert raw.status_code == 400 and "multipart" in raw.get_json()["message"]
    make_user("bob", "operator")
    mine = olga.get("/api/projects/active").get_json()["project"]["id"]
    other = api("bob").post(
        f"/api/scripts/{sid}/parameter-files?project_id={mine}",
        data={"file": (io.BytesIO(b"x"), "x.csv")},
    )
    assert other.status_code == 404
