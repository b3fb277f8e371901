"""The seed's port-based interface: the runner starts such a script with the seed's arguments."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from runner_support import ENVIRONMENT, free_port, runner_env, write_session
from smrunner.context import SessionContext
from smrunner.legacy import is_legacy, legacy_arguments

REPO = Path(__file__).resolve().parents[2]
SHIFT_NOTES = REPO / "script_groups" / "engineering_tools" / "shift_notes.py"

ECHO_ARGS = '''"""
ScriptsManager Metadata:
@interface: legacy
"""
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "injected": "PARAMETERS" in globals()}))
sys.exit(4)
'''


def test_detection_needs_the_header_flag() -> None:
    assert is_legacy(ECHO_ARGS)
    assert is_legacy('# coding: utf-8\n"""\nScriptsManager Metadata:\n@Interface :  LEGACY\n"""\n')
    assert not is_legacy('"""\nScriptsManager Metadata:\n@interface: runner\n"""\n')
    assert not is_legacy('import os\n"""\n@interface: legacy\n"""\n')  # not the docstring
    assert not is_legacy("print('@interface: legacy')\n")


def test_arguments_follow_the_seed() -> None:
    context = SessionContext(script_path="s.py", environment=dict(ENVIRONMENT))
    assert legacy_arguments(context) == [
        "--data-dir", "/workspace", "--user-level", "operator", "--port", "8080",
        "--project-id", "1", "--project-name", "Water <Analysis>", "--theme", "dark",
        "--language", "es",
    ]  # fmt: skip


def test_runs_as_a_program_with_the_arguments(tmp_path: Path) -> None:
    context_file, data = write_session(tmp_path, ECHO_ARGS)
    result = subprocess.run([sys.executable, "-m", "smrunner"], env=runner_env(context_file),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 4, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["argv"][:2] == ["--data-dir", data["workspace_path"]]
    assert seen["argv"][4:6] == ["--port", "8080"]
    assert seen["cwd"] == data["workspace_path"] and seen["injected"] is False


def _get(url: str) -> tuple[int, str]:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_shipped_example_serves_on_its_port_and_stops_on_sigterm(
    tmp_path: Path, start_runner: Callable[..., subprocess.Popen[str]]
) -> None:
    port = free_port()
    proc = start_runner(SHIFT_NOTES.read_text(), name="shift_notes.py", port=port)
    workspace = tmp_path / "workspace"  # runner_support.write_session's
    status, body = _get(f"http://127.0.0.1:{port}/api/project-info")
    assert status == 200
    info = json.loads(body)
    assert info["project_name"] == "Water <Analysis>" and info["language"] == "es"
    assert info["data_dir"] == str(workspace)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/notes", data=b"text=valve+3+ok")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert "valve 3 ok" in response.read().decode()  # after the redirect to ./
    assert (workspace / "shift_notes.json").is_file()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "Starting shift notes for project: Water <Analysis>" in output


def test_the_manager_treats_a_legacy_script_as_interactive() -> None:
    from manager.catalog.header import parse_header
    from manager.models import Script
    from manager.sessions.service import is_interactive

    header = parse_header(SHIFT_NOTES.read_text())
    assert header.fields["interface"] == "legacy" and not header.errors
    assert is_interactive(Script(metadata_json={"interface": "legacy", "registers_routes": False}))
    bad = parse_header('"""\nScriptsManager Metadata:\n@interface: port\n"""\n')
    assert "must be one of runner, legacy" in bad.errors[0]
