"""A runner started before its container joined its network (``DockerBackend.start``) runs the
script only once the manager says the container has joined: it creates the file named in
``SM_NETWORK_READY_FILE``. Without that variable the script runs at once, as before."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from runner_support import runner_env, write_session

SCRIPT = """
import os, time
print("script ran", time.time(), flush=True)
print("sees the variable:", "SM_NETWORK_READY_FILE" in os.environ, flush=True)
"""


def _start(tmp_path: Path, marker: Path | None) -> subprocess.Popen[str]:
    context_file, _ = write_session(tmp_path, SCRIPT, prefix="")
    env = runner_env(context_file)
    if marker is not None:
        env["SM_NETWORK_READY_FILE"] = str(marker)
    return subprocess.Popen(
        [sys.executable, "-m", "smrunner"], env=env, stdout=subprocess.PIPE, text=True
    )


def test_the_script_waits_for_the_network_and_never_sees_the_variable(tmp_path: Path) -> None:
    marker = tmp_path / "capture" / "network-ready"
    marker.parent.mkdir()
    proc = _start(tmp_path, marker)
    try:
        time.sleep(1.5)  # long enough for the runner to import Flask and reach the script
        assert proc.poll() is None, "the runner ended before it was told the network is there"
        told = time.time()
        marker.touch()
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    ran = float(out.split("script ran ", 1)[1].split()[0])
    assert ran >= told
    assert "sees the variable: False" in out


def test_without_the_variable_the_script_runs_at_once(tmp_path: Path) -> None:
    proc = _start(tmp_path, None)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "script ran" in out
