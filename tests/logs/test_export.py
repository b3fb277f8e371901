"""Run detail and downloads: the seed's JSON record, TXT, CSV, tail of huge logs, bulk export."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest

from tests.logs.test_api_support import World, audit_actions, build_world


@pytest.fixture
def world(app, make_user) -> World:
    return build_world(app, make_user)


LINES = [
    ("debug", "image scriptsmanager-env-base:test"),
    ("stdout", "Processing 1000 records..."),
    ("stderr", "warning: slow disk"),
    ("stdout", "=SUM(A1:A2) looks like a formula"),
    ("stdout", 'tab\there, comma, "quotes"'),
    ("debug", "exit code 0"),
]


def make(world, username: str = "olga", **extra) -> str:
    return world.run(
        username,
        output="Processing 1000 records...\n=SUM(A1:A2) looks like a formula\n"
        'tab\there, comma, "quotes"',
        errors="warning: slow disk",
        debug="image scriptsmanager-env-base:test\nexit code 0",
        parameters={"input_file": "data.csv", "token": "********"},
        lines=LINES,
        **extra,
    )


def test_detail_has_everything_the_page_shows(world, api):
    run = make(world)
    body = api("olga").get(f"/api/logs/execution/{run}").get_json()
    assert body["execution_id"] == run and body["status"] == "completed"
    assert body["output"]["stdout"].startswith("Processing 1000 records")
    assert body["output"]["stderr"] == "warning: slow disk"
    assert body["output"]["debug"].endswith("exit code 0")
    assert body["parameters"] == {"input_file": "data.csv", "token": "********"}
    assert body["secret_parameters"] == ["token"]
    assert body["rerun"] == {
        "script_id": world.scripts["report"],
        "project_id": world.projects["olga_default"],
        "method": "POST",
        "url": f"/api/scripts/{world.scripts['report']}/execute",
        "parameters": {"input_file": "data.csv"},
        "secret_parameters": ["token"],
    }
    assert body["environment"]["conda_env"] == "base"
    assert body["environment"]["variables"] == {"USER_ID": world.users["olga"]}
    assert body["log_file"]["exists"] and body["log_file"]["lines"] == len(LINES)
    assert body["output_sizes"]["stderr"] == len("warning: slow disk")
    assert body["script_name"] == "Monthly report" and body["project_name"] == "project_default"
    assert "viewers" in body


def test_tail_and_paging_read_the_file(world, api):
    run = make(world)
    olga = api("olga")
    tail = olga.get(f"/api/logs/execution/{run}?tail=2").get_json()
    assert "output" not in tail and tail["source"] == "file"
    assert [(li["seq"], li["stream"], li["text"]) for li in tail["lines"]] == [
        (5, "stdout", 'tab\there, comma, "quotes"'),
        (6, "debug", "exit code 0"),
    ]
    assert tail["lines"][0]["ts"].endswith("Z")
    errors = olga.get(f"/api/logs/execution/{run}?tail=10&streams=stderr").get_json()
    assert [li["text"] for li in errors["lines"]] == ["warning: slow disk"]
    page = olga.get(f"/api/logs/execution/{run}?after_seq=2&limit=2").get_json()
    assert [li["seq"] for li in page["lines"]] == [3, 4] and page["last_seq"] == 4
    assert olga.get(f"/api/logs/execution/{run}?streams=video").status_code == 400
    assert olga.get(f"/api/logs/execution/{run}?tail=-1").status_code == 400


def test_tail_without_a_file_uses_the_columns(world, api):
    run = world.run("olga", output="a\nb\nc", with_file=False)
    body = api("olga").get(f"/api/logs/execution/{run}?tail=2").get_json()
    assert body["source"] == "database" and [li["text"] for li in body["lines"]] == ["b", "c"]
    assert body["log_file"] == {"exists": False, "size": 0, "lines": 0}


def test_someone_elses_run_is_not_found_and_admin_access_is_audited(world, api):
    run = make(world)
    ivan = api("ivan")
    for url in (
        f"/api/logs/execution/{run}",
        f"/api/logs/execution/{run}/download?format=json",
        "/api/logs/execution/no-such-run",
    ):
        assert ivan.get(url).status_code == 404
    assert ivan.delete(f"/api/logs/execution/{run}").status_code == 404
    assert audit_actions(world.app, "log_accessed") == []
    root = api("root")
    assert root.get(f"/api/logs/execution/{run}").status_code == 200
    assert root.get(f"/api/logs/execution/{run}/download?format=txt").status_code == 200
    events = audit_actions(world.app, "log_accessed")
    assert [e["target"] for e in events] == [f"execution:{run}"] * 2
    assert all(e["admin"] and e["username"] == "root" for e in events)
    assert events[0]["details"]["owner"] == "olga"
    assert root.delete(f"/api/logs/execution/{run}").status_code == 404  # own only
    api("olga").get(f"/api/logs/execution/{run}")
    assert len(audit_actions(world.app, "log_accessed")) == 2  # the owner is not audited


def download(client, run: str, fmt: str):
    response = client.get(f"/api/logs/execution/{run}/download?format={fmt}")
    assert response.status_code == 200, response.data[:200]
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="execution_{run}.{fmt}"'
    return response


def test_json_download_follows_the_seed_record(world, api):
    run = make(world)
    record = json.loads(download(api("olga"), run, "json").data)
    assert list(record) == [
        "execution_id",
        "script_id",
        "script_name",
        "user_id",
        "username",
        "project_id",
        "project_name",
        "execution_start",
        "execution_end",
        "duration_seconds",
        "status",
        "exit_code",
        "parameters",
        "environment",
        "output",
        "session_info",
    ]
    assert record["execution_id"] == run and record["username"] == "olga"
    assert record["script_name"] == "Monthly report" and record["duration_seconds"] == 5
    assert record["execution_start"].endswith("Z") and record["status"] == "completed"
    assert set(record["output"]) == {"stdout", "stderr", "debug"}
    assert record["output"]["stderr"] == "warning: slow disk"
    assert record["parameters"]["token"] == "********"
    assert set(record["session_info"]) == {"browser_session", "interface_url", "real_time_viewers"}


def test_csv_download_parses_back_line_by_line(world, api):
    run = make(world)
    response = download(api("olga"), run, "csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert [(int(r["seq"]), r["stream"]) for r in rows] == [
        (i + 1, stream) for i, (stream, _) in enumerate(LINES)
    ]
    texts = [r["text"] for r in rows]
    assert texts[4] == 'tab\there, comma, "quotes"'
    assert texts[3] == "'=SUM(A1:A2) looks like a formula"  # never run as a formula
    assert {r["execution_id"] for r in rows} == {run} and rows[0]["timestamp"].endswith("Z")


def test_txt_download_has_a_header_and_every_line(world, api):
    run = make(world)
    text = download(api("olga"), run, "txt").data.decode()
    header, _, body = text.partition("-" * 72 + "\n")
    assert f"Execution: {run}" in header and "Status: completed" in header
    assert '"input_file": "data.csv"' in header
    lines = body.splitlines()
    assert len(lines) == len(LINES)
    assert lines[2].endswith("[stderr] warning: slow disk")


def test_download_without_a_file_uses_the_columns(world, api):
    run = world.run("olga", output="one\ntwo", errors="bad", with_file=False)
    rows = list(csv.DictReader(io.StringIO(download(api("olga"), run, "csv").data.decode())))
    assert [(r["stream"], r["text"]) for r in rows] == [
        ("stdout", "one"),
        ("stdout", "two"),
        ("stderr", "bad"),
    ]


@pytest.mark.parametrize("fmt", ["pdf", "", "../x"])
def test_unknown_format_is_400(world, api, fmt):
    run = make(world)
    response = api("olga").get(f"/api/logs/execution/{run}/download?format={fmt}")
    assert response.status_code == 400 and "format" in response.get_json()["message"]


def test_bulk_export_zip_and_json_lines(world, api):
    runs = [make(world), make(world)]
    foreign = make(world, "ivan")
    olga = api("olga")
    response = olga.post(
        "/api/logs/bulk", json={"action": "export", "execution_ids": [*runs, foreign]}
    )
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == sorted(f"execution_{r}.json" for r in runs)
    record = json.loads(archive.read(f"execution_{runs[0]}.json"))
    assert record["execution_id"] == runs[0]
    csvs = olga.post(
        "/api/logs/bulk", json={"action": "export", "execution_ids": runs, "format": "csv"}
    )
    member = zipfile.ZipFile(io.BytesIO(csvs.data)).read(f"execution_{runs[1]}.csv").decode()
    assert len(list(csv.DictReader(io.StringIO(member)))) == len(LINES)
    lines = olga.post(
        "/api/logs/bulk", json={"action": "export", "execution_ids": runs, "format": "jsonl"}
    )
    assert lines.headers["Content-Disposition"].endswith('.jsonl"')
    parsed = [json.loads(line) for line in lines.data.decode().splitlines()]
    assert sorted(p["execution_id"] for p in parsed) == sorted(runs)
    nothing = olga.post("/api/logs/bulk", json={"action": "export", "execution_ids": [foreign]})
    assert nothing.status_code == 404
