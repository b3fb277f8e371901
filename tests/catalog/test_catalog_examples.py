"""The shipped example groups: discovered valid, documented, and runnable in both modes."""

from __future__ import annotations

import ast
import json
import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from manager.catalog.discovery import discover
from manager.catalog.schema import validate_parameter_values
from manager.models import Script, ScriptGroup

REPO = Path(__file__).resolve().parents[2]
GROUPS = REPO / "script_groups"
LANGS = ("en", "es", "it", "fr")
EXAMPLES = sorted(p.relative_to(GROUPS).as_posix() for p in GROUPS.glob("*/[!_]*.py"))
# The seed's port-based interface (@interface: legacy): its own argparse and Flask server.
LEGACY = {"engineering_tools/shift_notes.py"}
INTERACTIVE = {"engineering_tools/calculator.py", *LEGACY}
BATCH = [name for name in EXAMPLES if name not in INTERACTIVE]
# Keep proxy-mode runs short: the manager would send these as the user's choice.
FAST_PARAMETERS = {"engineering_tools/progress_demo.py": {"steps": 3, "delay": 0}}
PROXY_DRIVER = """
import json, runpy, sys
from flask import Flask
context = json.loads(sys.argv[2])
context["app"] = Flask("script")
runpy.run_path(sys.argv[1], init_globals=context, run_name="__main__")
"""


@pytest.fixture
def catalog(session: Session) -> Session:
    report = discover(session, GROUPS, envs_dir=REPO / "conda-envs")
    assert report.invalid == {}
    assert report.warnings == {}
    assert report.errors == []
    return session


def script(session: Session, name: str) -> Script:
    group, filename = name.split("/")
    row = session.scalar(
        select(Script)
        .join(ScriptGroup)
        .where(ScriptGroup.directory_path == group, Script.filename == filename)
    )
    assert row is not None
    return row


def test_the_examples_cover_three_groups_and_six_scripts() -> None:
    groups = {name.split("/")[0] for name in EXAMPLES}
    assert {"data_processing", "engineering_tools", "system_admin"} <= groups
    assert len(EXAMPLES) >= 6


def test_every_group_is_complete(catalog: Session) -> None:
    for group in catalog.scalars(select(ScriptGroup)):
        meta = group.metadata_json
        assert group.invalid_reason is None
        assert set(meta["name"]) == set(LANGS), group.directory_path
        assert set(meta["description"]) == set(LANGS), group.directory_path
        assert meta["icon"] and meta["category"]
        assert group.conda_environment == "base"
        assert meta["execution_timeout"] > 0
        assert {"memory", "cpus", "pids", "run_timeout", "idle_timeout", "network"} <= set(
            meta["limits"]
        )
    assert catalog.scalars(select(ScriptGroup.required_level)).all().count("admin") == 1


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_script_is_valid_and_described_in_four_languages(catalog: Session, name: str) -> None:
    row = script(catalog, name)

    assert row.invalid_reason is None
    assert row.metadata_json["warnings"] == []
    assert set(row.metadata_json["description"]) == set(LANGS)
    assert row.category and row.tags and (row.parameters or name in LEGACY)
    assert row.metadata_json["registers_routes"] is (name in INTERACTIVE)
    for rel in row.metadata_json["description_long"].values():
        assert (GROUPS / name.split("/")[0] / rel).is_file()


@pytest.mark.parametrize(
    "name", ["engineering_tools/calculator.py", "data_processing/csv_summary.py"]
)
def test_documentation_exists_in_four_languages(catalog: Session, name: str) -> None:
    docs = script(catalog, name).metadata_json["description_long"]

    assert set(docs) == set(LANGS)
    texts = {
        (GROUPS / name.split("/")[0] / rel).read_text(encoding="utf-8") for rel in docs.values()
    }
    assert len(texts) == 4 and all(len(text) > 500 for text in texts)


def test_script_metadata_json_overrides_display_names(catalog: Session) -> None:
    summary = script(catalog, "data_processing/csv_summary.py")

    assert summary.display_name == "CSV Summary"
    assert summary.metadata_json["display_name"]["es"] == "Resumen de CSV"
    assert summary.metadata_json["sources"]["display_name"] == "script_metadata"


def test_admin_scripts_are_admin_only(catalog: Session) -> None:
    for name in ("system_admin/workspace_cleanup.py", "system_admin/system_report.py"):
        assert script(catalog, name).required_level == "admin"


@pytest.mark.parametrize("name", [name for name in EXAMPLES if name not in LEGACY])
def test_testing_mode_defaults_match_the_header(catalog: Session, name: str) -> None:
    tree = ast.parse((GROUPS / name).read_text(encoding="utf-8"))
    defaults = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "DEFAULTS" for t in node.targets)
    )
    header = {p["name"]: p.get("default") for p in script(catalog, name).parameters}

    assert defaults == header


def run(args: list[str], workspace: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=workspace,
        env={**os.environ, "WORKSPACE_PATH": str(workspace), "PYTHONUTF8": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", BATCH)
def test_batch_scripts_run_in_testing_mode(name: str, tmp_path: Path) -> None:
    result = run([sys.executable, str(GROUPS / name)], tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Running in testing mode" in result.stdout


@pytest.mark.parametrize("name", BATCH)
def test_batch_scripts_run_with_injected_context(
    catalog: Session, name: str, tmp_path: Path
) -> None:
    parameters, errors = validate_parameter_values(
        script(catalog, name).parameters, FAST_PARAMETERS.get(name, {})
    )
    assert errors == {}
    context: dict[str, Any] = {
        "WORKSPACE_PATH": str(tmp_path),
        "PARAMETERS": parameters,
        "ENVIRONMENT": {"USER_ID": "7", "USER_LEVEL": "admin", "PROJECT_ID": "3",
                        "PROJECT_NAME": "Demo", "USER_THEME": "dark", "USER_LANGUAGE": "es"},
    }  # fmt: skip

    result = run(
        [sys.executable, "-c", PROXY_DRIVER, str(GROUPS / name), json.dumps(context)], tmp_path
    )

    assert result.returncode == 0, result.stderr
    # A batch run is no proxied interface; and no emoji (a box in a browser without the font).
    assert "Running in ScriptsManager (batch run)" in result.stdout
    assert "proxy mode" not in result.stdout
    assert result.stdout.isascii(), [c for c in result.stdout if not c.isascii()]


def test_csv_summary_writes_its_report(tmp_path: Path) -> None:
    result = run([sys.executable, str(GROUPS / "data_processing/csv_summary.py")], tmp_path)

    assert result.returncode == 0, result.stderr
    (report_file,) = (tmp_path / "results").glob("csv_summary_*.json")
    report = json.loads(report_file.read_text())
    assert report["rows"] == 360
    assert report["columns"]["temperature_c"]["outliers"] >= 1


def test_calculator_routes_work_on_the_injected_app(tmp_path: Path) -> None:
    """The calculator on the runner's own app, as in a session (base template included)."""
    sys.path.insert(0, str(REPO / "runner-image"))
    try:
        from smrunner.app import create_app
        from smrunner.context import SessionContext
    finally:
        sys.path.remove(str(REPO / "runner-image"))
    environment = {"USER_LANGUAGE": "fr", "USER_THEME": "dark", "PROJECT_NAME": "<b>"}
    app = create_app(SessionContext(script_path="calculator.py", environment=environment))
    runpy.run_path(
        str(GROUPS / "engineering_tools/calculator.py"),
        init_globals={
            "WORKSPACE_PATH": str(tmp_path),
            "PARAMETERS": {"precision": 3, "angle_unit": "degrees"},
            "ENVIRONMENT": environment,
            "app": app,
        },
        run_name="calculator_under_test",
    )
    client = app.test_client()

    page = client.get("/").get_data(as_text=True)
    assert "Calculatrice" in page and "&lt;b&gt;" in page and 'data-bs-theme="dark"' in page
    assert client.post("/calculate", json={"expression": "sin(30)*2"}).get_json() == {
        "result": pytest.approx(1.0),
        "formatted": "1",
    }
    refused = client.post("/calculate", json={"expression": "__import__('os')"})
    assert refused.status_code == 400
    assert client.get("/history").get_json()[0]["expression"] == "sin(30)*2"
    assert json.loads((tmp_path / "calculator_history.json").read_text())[0]["result"] == "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_calculator_serves_itself_in_testing_mode(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(GROUPS / "engineering_tools/calculator.py")],
        cwd=tmp_path,
        env={**os.environ, "WORKSPACE_PATH": str(tmp_path), "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/calculate",
            data=json.dumps({"expression": "2**10"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    body = json.loads(response.read())
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert body["formatted"] == "1024"
    finally:
        process.terminate()
        process.wait(timeout=10)
