"""The session context: what the manager tells the runner about this run."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONTEXT_FILE = "/run/sm/context.json"
DEFAULT_WORKSPACE = "/workspace"
DEFAULT_PORT = 8080
# A pooled (warm) container starts before its run exists: with SM_CONTEXT_WAIT=1 it waits for the
# manager to write the context file (written whole: a temporary name, then a rename).
WAIT_ENV = "SM_CONTEXT_WAIT"
WAIT_INTERVAL = 0.005
# Set by the capture for a standby: the file to create once preloaded, so the manager (and the
# start benchmark) can tell a standby that is ready from one still importing Flask.
READY_ENV = "SM_STANDBY_READY_FILE"
# A container the manager started before joining it to its network (it joins while Python
# starts): the file the manager creates once joined. The script waits for it, not Flask.
NETWORK_READY_ENV = "SM_NETWORK_READY_FILE"
NETWORK_WAIT_INTERVAL = 0.002
ENVIRONMENT_KEYS = (
    "USER_ID",
    "USER_LEVEL",
    "PROJECT_ID",
    "PROJECT_NAME",
    "USER_THEME",
    "USER_LANGUAGE",
)
# The prefix ends up in a Set-Cookie path and in generated URLs: keep it to plain path characters.
_PREFIX_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")
_SESSION_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# A request the proxy meant for another session (``SessionContext.session``) is refused with 421
# and this header, which tells the proxy to look the session up again (smrunner.app, .legacy).
MISMATCH_HEADER = ("X-SM-Session-Mismatch", "1")
MISDIRECTED_TEXT = "This request was meant for another session; this one has not seen it.\n"


class ContextError(ValueError):
    """The context file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class SessionContext:
    """One session's context, as read from the context file."""

    script_path: str
    workspace_path: str = DEFAULT_WORKSPACE
    parameters: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    brand: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""  # the proxy URL prefix without a trailing slash, "" when not proxied
    port: int = DEFAULT_PORT
    # The run's execution uuid: the proxy names it in X-SM-Session on every request, and a
    # request naming another session is refused (421), so a route to an address the engine gave
    # to the next container never reaches that container's app. "" for an unproxied run.
    session: str = ""

    @classmethod
    def from_dict(cls, data: Any) -> SessionContext:
        """Validate ``data`` (the decoded JSON) and build a context; raise ContextError."""
        if not isinstance(data, dict):
            raise ContextError("the context must be a JSON object")
        script_path = data.get("script_path")
        if not isinstance(script_path, str) or not script_path:
            raise ContextError("'script_path' is required and must be a string")
        workspace = data.get("workspace_path") or DEFAULT_WORKSPACE
        if not isinstance(workspace, str):
            raise ContextError("'workspace_path' must be a string")
        mappings = {}
        for key in ("parameters", "environment", "brand"):
            value = data.get(key) or {}
            if not isinstance(value, dict):
                raise ContextError(f"'{key}' must be a JSON object")
            mappings[key] = dict(value)
        prefix = data.get("prefix") or ""
        if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix.rstrip("/")):
            raise ContextError(f"'prefix' must be a URL path like /project/1/user/3: {prefix!r}")
        port = data.get("port") or DEFAULT_PORT
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ContextError(f"'port' must be an integer between 1 and 65535: {port!r}")
        session = data.get("session") or ""
        if not isinstance(session, str) or session and not _SESSION_RE.match(session):
            raise ContextError(f"'session' must be letters, digits and dashes: {session!r}")
        return cls(
            script_path=script_path,
            workspace_path=workspace,
            parameters=mappings["parameters"],
            environment=mappings["environment"],
            brand=mappings["brand"],
            prefix=prefix.rstrip("/"),
            port=port,
            session=session,
        )


def _preload() -> None:
    """While a standby waits, import what running a script needs (Flask, the runner's app and
    the web server), so the hand-over pays for none of it, then say it is ready."""
    for module in ("smrunner.app", "smrunner.execute", "smrunner.serve", "waitress.server"):
        # On failure the run imports it again and reports it then.
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    marker = os.environ.pop(READY_ENV, "")  # the script has no business with it
    if marker:
        with contextlib.suppress(OSError):
            Path(marker).touch()


def await_network() -> None:
    """Return once the manager says the container is on its network (at once when the manager
    did not start it off it), its address announced: the script may reach out, or be reached,
    as soon as it runs."""
    marker = os.environ.pop(NETWORK_READY_ENV, "")  # the script has no business with it
    if not marker:
        return
    while not os.path.exists(marker):
        time.sleep(NETWORK_WAIT_INTERVAL)
    # The capture announced the address as the container started, off its network, so nothing
    # went out then: announce it now that the container has joined (``capture.announce_address``).
    from smrunner.capture import announce_address

    announce_address()


def load_context(path: str | Path = DEFAULT_CONTEXT_FILE) -> SessionContext:
    """Read and validate the context file at ``path``; raise ContextError.

    With ``SM_CONTEXT_WAIT=1`` a missing file is waited for (every 5 ms, indefinitely: the
    manager removes a standby it no longer wants); without it, a missing file is an error.
    """
    if os.environ.get(WAIT_ENV) == "1" and not Path(path).exists():
        _preload()
        while not Path(path).exists():
            time.sleep(WAIT_INTERVAL)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ContextError(f"cannot read the context file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContextError(f"the context file {path} is not valid JSON: {exc}") from None
    return SessionContext.from_dict(data)
