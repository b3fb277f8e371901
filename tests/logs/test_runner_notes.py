"""The runner's own notes are debug lines, never the script's stderr (shown red as errors).

The runner, its capture process and the manager's reader, on the host's Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from manager.sessions.capture import CAPTURE_FILE, CaptureLimits, read_capture

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner-image"
SCRIPT = """
import sys
app.run(host="0.0.0.0", port=5000)  # kept for testing mode; the runner ignores it
print("result: 42")
print("careful", file=sys.stderr)
"""


def run(tmp_path: Path, script: str, workspace: str | None = None) -> tuple[int, list]:
    """``python -m smrunner`` with a capture folder; (status, [(stream, text)] as read back)."""
    (tmp_path / "script.py").write_text(script)
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"script_path": str(tmp_path / "script.py"),
                                   "workspace_path": workspace or str(tmp_path)}))  # fmt: skip
    capture = tmp_path / "capture"
    capture.mkdir()
    environment = {**os.environ, "SM_CONTEXT_FILE": str(context), "SM_CAPTURE_DIR": str(capture),
                   "PYTHONPATH": str(RUNNER_DIR)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "smrunner"], env=environment, timeout=60,
                          capture_output=True, check=False)  # fmt: skip
    assert done.stdout == b"" and done.stderr == b"", "output goes to the capture file only"
    lines = read_capture(capture / CAPTURE_FILE, CaptureLimits())
    return done.returncode, [(line.stream, line.text) for line in lines]


def test_runner_notes_are_debug_and_the_scripts_stderr_stays_stderr(tmp_path: Path) -> None:
    status, lines = run(tmp_path, SCRIPT)
    assert status == 0
    assert ("stdout", "result: 42") in lines and ("stderr", "careful") in lines
    notes = [(stream, text) for stream, text in lines if text.startswith("[smrunner]")]
    assert notes and {stream for stream, _ in notes} == {"debug"}, lines
    assert "app.run() ignored" in notes[0][1]


def test_runner_warnings_stay_on_stderr(tmp_path: Path) -> None:
    status, lines = run(tmp_path, "print('ok')\n", workspace=str(tmp_path / "missing"))
    assert status == 0
    [warning] = [(stream, text) for stream, text in lines if "cannot enter" in text]
    assert warning[0] == "stderr"


def test_the_script_does_not_see_the_notes_pipe(tmp_path: Path) -> None:
    script = "import os\nprint(os.environ.get('SM_RUNNER_NOTES_FD', 'hidden'))\n"
    status, lines = run(tmp_path, script)
    assert status == 0 and ("stdout", "hidden") in lines
