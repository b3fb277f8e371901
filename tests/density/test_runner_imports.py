"""What the runner's long-lived processes import: each module is memory of every session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner-image"
# What the capture process may import: os (imported at start-up by site, here without it) and
# what the capture uses from the C core (``_socket`` to announce the container's address, not
# ``socket``, which imports enum); no subprocess, selectors, typing, enum, Flask.
STARTUP = {"_collections_abc", "_stat", "genericpath", "os", "os.path", "posixpath", "stat"}
CAPTURE_MAY_IMPORT = STARTUP | {
    "__future__", "_socket", "importlib", "importlib._bootstrap", "importlib._bootstrap_external",
    "select",
    "smrunner", "smrunner.capture", "types", "warnings",
}  # fmt: skip


def imported_by(statement: str) -> set[str]:
    """The modules ``statement`` adds to a fresh interpreter (no site: the runner's own only)."""
    code = (
        "import sys, json; before = set(sys.modules)\n"
        f"{statement}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    environment = {**os.environ, "PYTHONPATH": str(RUNNER_DIR)}
    done = subprocess.run([sys.executable, "-S", "-c", code], env=environment,
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return set(json.loads(done.stdout))


def test_the_capture_process_imports_no_more_than_it_uses() -> None:
    added = imported_by("import smrunner.capture")
    assert added <= CAPTURE_MAY_IMPORT, sorted(added - CAPTURE_MAY_IMPORT)


def test_the_runner_imports_flask_only_for_a_script_that_gets_an_app() -> None:
    added = imported_by("import smrunner, smrunner.main, smrunner.legacy, smrunner.context")
    assert not {"flask", "werkzeug", "jinja2", "waitress"} & added
