"""Helpers shared by the runner's tests: a seed-pattern script, session files, subprocess env."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner-image"

PREFIX = "/project/1/script/2/user/3"
ENVIRONMENT = {
    "USER_ID": "3",
    "USER_LEVEL": "operator",
    "PROJECT_ID": "1",
    "PROJECT_NAME": "Water <Analysis>",
    "USER_THEME": "dark",
    "USER_LANGUAGE": "es",
}

SEED_SCRIPT = '''
"""
ScriptsManager Metadata:
@description: the seed's script pattern
@required_level: operator
"""
try:
    print(f"Workspace: {WORKSPACE_PATH}")
    print(f"Parameters: {PARAMETERS}")
    print(f"Environment: {ENVIRONMENT}")
    USER_ID = ENVIRONMENT.get("USER_ID")
    PROJECT_ID = ENVIRONMENT.get("PROJECT_ID")
    PROJECT_NAME = ENVIRONMENT.get("PROJECT_NAME")
    USER_LEVEL = ENVIRONMENT.get("USER_LEVEL")
    PROXY_MODE = True
    print("Running in ScriptsManager proxy mode")
except NameError:
    PROXY_MODE = False
    print("Running in testing mode")
    from flask import Flask
    app = Flask(__name__)
    WORKSPACE_PATH = "."
    PARAMETERS = {}

from flask import redirect, request, session, url_for


@app.route("/")
def script_main():
    session["visits"] = session.get("visits", 0) + 1
    return f"main of project {PROJECT_NAME if PROXY_MODE else '-'} visits={session['visits']}"


@app.route("/calculate", methods=["POST"])
def calculate():
    return {"result": int(request.form["a"]) + int(request.form["b"])}


@app.route("/go")
def go():
    return redirect(url_for("script_main"))


if __name__ == "__main__":
    print("main block ran")
    app.run(port=5000)
'''


def write_session(
    tmp_path: Path, script: str, name: str = "script.py", **context: Any
) -> tuple[Path, dict[str, Any]]:
    """Write ``script`` and its context under ``tmp_path``; return the context file and data."""
    scripts = tmp_path / "scripts" / "group"
    scripts.mkdir(parents=True, exist_ok=True)
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    script_path = scripts / name
    script_path.write_text(textwrap.dedent(script), encoding="utf-8")
    data: dict[str, Any] = {
        "script_path": str(script_path),
        "workspace_path": str(workspace),
        "parameters": {"threshold": 5},
        "environment": dict(ENVIRONMENT),
        "brand": {"name": "SIDEL ScriptsManager"},
        "prefix": PREFIX,
        "port": 8080,
    }
    data.update(context)
    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps(data), encoding="utf-8")
    return context_file, data


def runner_env(context_file: Path | str) -> dict[str, str]:
    """Return an environment in which ``python -m smrunner`` runs ``context_file``'s session."""
    env = dict(os.environ)
    env["SM_CONTEXT_FILE"] = str(context_file)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RUNNER_DIR), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 15) -> str:
    """Read ``proc``'s stdout until a line contains ``needle``; return what was read."""
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if needle in line:
            return seen
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"{needle!r} not seen; output so far: {seen!r}")
