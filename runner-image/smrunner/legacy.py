"""The seed's older, port-based script interface, run unchanged.

A script whose metadata header says ``@interface: legacy`` parses the seed's arguments and
serves its own Flask app::

    python script.py --data-dir <path> --user-level <level> --port <number> --project-id <id>
                     --project-name <name> --theme <theme> --language <lang>

The runner starts it as a child process with ``--data-dir /workspace`` (the user's project
folder) and ``--port 8080`` (the port the proxy reaches in every session container), the other
values from the session's context, and waits for it. Its output goes to the runner's stdout and
stderr, so the capture stores it like any run's. SIGTERM is passed on; the child gets
:data:`STOP_GRACE` seconds to stop before it is killed. Nothing is injected into its globals:
it is an ordinary Python process.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

from smrunner.context import SessionContext

log = logging.getLogger("smrunner")

# The header line, inside the leading docstring: "@interface: legacy" (any case and spacing).
INTERFACE_RE = re.compile(r"^\s*@interface\s*:\s*legacy\s*$", re.IGNORECASE | re.MULTILINE)
DOCSTRING_RE = re.compile(r'^\s*(?:#[^\n]*\n|\s)*[rRuU]?("""|\'\'\')(.*?)\1', re.DOTALL)
STOP_GRACE = 10.0
LEVELS = ("admin", "developer", "operator", "viewer")


def is_legacy(source: str) -> bool:
    """True when the script's leading docstring declares ``@interface: legacy``."""
    match = DOCSTRING_RE.match(source)
    return bool(match and INTERFACE_RE.search(match.group(2)))


def legacy_arguments(context: SessionContext) -> list[str]:
    """The seed's command-line arguments for this session."""
    env = context.environment
    level = str(env.get("USER_LEVEL") or "operator")
    return [
        "--data-dir", context.workspace_path,
        "--user-level", level if level in LEVELS else "operator",
        "--port", str(context.port),
        "--project-id", str(env.get("PROJECT_ID", "")),
        "--project-name", str(env.get("PROJECT_NAME", "")),
        "--theme", str(env.get("USER_THEME") or "light"),
        "--language", str(env.get("USER_LANGUAGE") or "en"),
    ]  # fmt: skip


def run_legacy(context: SessionContext, terminated: type[BaseException]) -> int:
    """Run the script as a child process until it exits; return its exit status.

    ``terminated`` is the exception the runner's SIGTERM handler raises: the child is then
    stopped (SIGTERM, then SIGKILL after :data:`STOP_GRACE` s) and 0 is returned, as for a
    session the user stopped. OSError when the interpreter or the script cannot be started.
    """
    argv = [sys.executable, context.script_path, *legacy_arguments(context)]
    log.info("legacy interface: %s", " ".join(argv[1:]))
    child = subprocess.Popen(argv, cwd=context.workspace_path or None)
    try:
        return child.wait()
    except terminated:
        child.terminate()
        try:
            child.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        log.info("legacy script stopped")
        return 0


def read_source(path: str) -> str:
    """The script's text (undecodable bytes replaced); OSError when it cannot be read."""
    return Path(path).read_bytes().decode("utf-8", errors="replace")
