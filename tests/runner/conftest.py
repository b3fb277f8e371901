"""Fixtures for the runner's tests: the runner runs on the host's Python, no Docker needed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner-image"
if str(RUNNER_DIR) not in sys.path:
    sys.path.insert(0, str(RUNNER_DIR))

from runner_support import runner_env, write_session  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_interpreter_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what running a script in-process changes: ``__main__``, ``sys.argv``, ``sys.path``."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield


@pytest.fixture
def session_files(tmp_path: Path) -> Callable[..., tuple[Path, dict[str, Any]]]:
    """Return ``write(script, **context)`` writing a script and its context into tmp_path."""

    def write(script: str, name: str = "script.py", **context: Any) -> tuple[Path, dict[str, Any]]:
        return write_session(tmp_path, script, name, **context)

    return write


@pytest.fixture
def run_runner(
    tmp_path: Path,
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Return ``run(script, **context)``: run the runner on a script to completion."""

    def run(script: str, timeout: float = 30, **context: Any) -> subprocess.CompletedProcess[str]:
        context_file, _ = write_session(tmp_path, script, **context)
        return subprocess.run(
            [sys.executable, "-m", "smrunner"],
            env=runner_env(context_file),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def start_runner(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Return ``start(script, **context)`` launching the runner (output on a pipe, as text);
    kills what is left at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(script: str, **context: Any) -> subprocess.Popen[str]:
        context_file, _ = write_session(tmp_path, script, **context)
        proc = subprocess.Popen(
            [sys.executable, "-m", "smrunner"],
            env=runner_env(context_file),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
