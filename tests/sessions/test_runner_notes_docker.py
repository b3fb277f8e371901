"""In a real session: the runner's own notes are debug lines, the script's stderr is stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sessions.session_support import SessionFactory, docker_backend

SCRIPT = """
import sys
app.run()  # kept for testing mode; the runner ignores it
print("result: 42")
print("careful", file=sys.stderr)
"""


@pytest.mark.docker
def test_runner_notes_are_debug_lines_in_a_session(
    docker_client: Any, env_image: str, tmp_path: Path
) -> None:
    backend = docker_backend(docker_client, tmp_path / "capture")
    factory = SessionFactory(backend, env_image, tmp_path / "runs")
    try:
        session = factory.start(SCRIPT)
        assert session.wait().exit_code == 0
        lines = [(line.stream, line.text) for line in session.lines()]
    finally:
        for started in factory.started:
            backend.remove(started.handle)
    assert ("stdout", "result: 42") in lines and ("stderr", "careful") in lines
    notes = [(stream, text) for stream, text in lines if text.startswith("[smrunner]")]
    assert notes and {stream for stream, _ in notes} == {"debug"}, lines
