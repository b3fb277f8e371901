"""What the fault tests share: a script group of their own, and reading a run's log file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from manager.logs.store import parse_record
from tests.support.serve import Server

GROUP = "faults_lab"

SCRIPTS = {
    # Numbered lines over a few seconds: long enough to kill the manager in the middle.
    "ticker.py": (
        "Numbered lines, slowly",
        "import sys, time\n"
        "for i in range(LINES):\n"
        "    print(f'tick {i:04d}', flush=True)\n"
        "    time.sleep(PAUSE)\n",
    ),
    # Runs until stopped: it holds a session slot.
    "sleeper.py": ("Sleeps", "import time\ntime.sleep(600)\n"),
    # Interactive (it has a route) but never ready: it sleeps before the runner can serve.
    "never_ready.py": (
        "Never answers",
        "import time\n\n\n@app.route('/')\ndef index():\n    return 'never'\n\n\ntime.sleep(600)\n",
    ),
    # Several MiB of output at once.
    "flood.py": (
        "Much output",
        "import sys\nline = 'x' * 1000\nfor i in range(6000):\n    print(i, line)\n",
    ),
}


def add_group(root: Path, lines: int = 150, pause: float = 0.05) -> None:
    """Write the group into the server's copy of the script groups (before it starts)."""
    folder = root / "script_groups" / GROUP
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {
        "name": {"en": "Faults lab"},
        "description": {"en": "Scripts the fault tests run"},
        "required_level": "operator",
        "conda_environment": "base",
        "limits": {
            "memory": "128m",
            "cpus": 0.5,
            "pids": 64,
            "run_timeout": 300,
            "network": "none",
            "max_sessions_per_user": 100,
        },
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    for name, (description, body) in SCRIPTS.items():
        body = body.replace("LINES", str(lines)).replace("PAUSE", str(pause))
        header = f'"""\nScriptsManager Metadata:\n@description: {description}\n'
        header += '@required_level: operator\n"""\n'
        (folder / name).write_text(header + body)


def run_log(server: Server, run: dict) -> list[tuple[int, str, str]]:
    """``(seq, stream, text)`` of every record of the run's log file, in file order."""
    name = f"execution_{run['execution_id']}.log"
    files = list((server.root / "logs" / "executions").rglob(name))
    assert len(files) == 1, files
    return [
        (seq, stream, text)
        for seq, _stamp, stream, text in map(parse_record, files[0].read_bytes().splitlines())
    ]


def wait_for(check, timeout: float = 30, what: str = "the condition"):
    """Poll ``check()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


def execute(server: Server, session: requests.Session, script: int, **body) -> requests.Response:
    return session.post(f"{server.url}/api/scripts/{script}/execute", json=body, timeout=60)
