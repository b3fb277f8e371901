"""The output capture forks the runner when glibc's arena cap is set from the start, and spawns
a second Python otherwise; either way the script holds nothing of the capture's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from manager.sessions.capture import CAPTURE_FILE, CaptureLimits, read_capture

REPO = Path(__file__).resolve().parents[2]
RUNNER_DIR = REPO / "runner-image"

# What the script sees of its process: its parent, the capture's modules, its descriptors.
LOOK = """
import json, os, sys
fds = {}
for name in os.listdir('/proc/self/fd'):
    try:
        fds[name] = os.readlink(f'/proc/self/fd/{name}')
    except OSError:
        pass  # the listing's own descriptor, closed by now
print(json.dumps({
    'parent': os.getppid(),
    'forked': 'smrunner.capture' in sys.modules,
    'fds': fds,
    'env': sorted(os.environ),
    'arenas': os.environ.get('MALLOC_ARENA_MAX'),
}))
print('to stderr', file=sys.stderr)
raise SystemExit(3)
"""


def run_captured(tmp_path: Path, script: str, **env: str) -> tuple[int, int, list]:
    """``python -m smrunner`` with a capture folder: (exit status, its pid, captured lines)."""
    (tmp_path / "script.py").write_text(script)
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"script_path": str(tmp_path / "script.py"),
                                   "workspace_path": str(tmp_path)}))  # fmt: skip
    capture = tmp_path / "capture"
    capture.mkdir()
    environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    environment.update(SM_CONTEXT_FILE=str(context), SM_CAPTURE_DIR=str(capture),
                       PYTHONPATH=str(RUNNER_DIR), **env)  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "smrunner"], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = process.communicate(timeout=120)
    assert out == b"" and err == b"", "output must go to the capture file only"
    lines = list(read_capture(capture / CAPTURE_FILE, CaptureLimits()))
    return process.returncode, process.pid, lines


@pytest.mark.parametrize("forked", [True, False], ids=["arena-cap-set: fork", "unset: spawn"])
def test_the_runner_is_forked_only_under_the_arena_cap_and_holds_only_its_pipes(
    tmp_path: Path, forked: bool
) -> None:
    env = {"MALLOC_ARENA_MAX": "2"} if forked else {}
    status, capture_pid, lines = run_captured(tmp_path, LOOK, **env)
    assert status == 3
    [seen] = [json.loads(line.text) for line in lines if line.stream == "stdout"]
    assert [line.text for line in lines if line.stream == "stderr"] == ["to stderr"]
    assert seen["parent"] == capture_pid  # the capture's child, whichever way it started
    assert seen["forked"] is forked
    assert seen["arenas"] == "2"  # capped either way
    assert "SM_CAPTURE_DIR" not in seen["env"] and "SM_RUNNER_NOTES_FD" not in seen["env"]
    fds = seen["fds"]
    assert not any(CAPTURE_FILE in target for target in fds.values()), fds
    pipes = {int(fd) for fd, target in fds.items() if target.startswith("pipe:")}
    # stdout, stderr and the runner's own notes pipe; no read end of the capture's.
    assert {1, 2} <= pipes and len(pipes) == 3, fds
    assert {int(fd) for fd in fds} - pipes <= {0}, fds
