"""A runner answers only the session it was started for (X-SM-Session, 421 otherwise).

Session containers get their addresses from the engine, which gives a freed address to the next
container; a proxy's stale route to an ended session then reaches another session's container,
maybe another user's. The runner's app (and, for the seed's port-based scripts, the relay in
front of the script's own server) refuses such a request before the script sees it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.util import is_hop_by_hop

import pytest
from smrunner import create_app, load_context, run_script
from smrunner.context import ContextError, SessionContext
from smrunner.legacy import child_port, legacy_arguments
from werkzeug.test import EnvironBuilder

SessionFiles = Callable[..., tuple[Path, dict[str, Any]]]
KEY = "0b7c6a52-5d1e-4c8f-9a7e-3f2d1c0b9a88"
OTHER = "9a1f0e2d-3c4b-4a59-8e7f-6d5c4b3a2f10"

ECHO_SCRIPT = """
from flask import request

SEEN = []

@app.route("/echo")
def echo():
    SEEN.append(request.path)
    return {"session_header": request.headers.get("X-SM-Session"), "seen": len(SEEN)}
"""

LEGACY_ECHO = '''"""
ScriptsManager Metadata:
@interface: legacy
"""
import argparse, json
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
for name in ("--data-dir", "--user-level", "--port", "--project-id", "--project-name",
             "--theme", "--language"):
    parser.add_argument(name)
args = parser.parse_args()
SEEN = []

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        SEEN.append(self.path)
        body = json.dumps({"session_header": self.headers.get("X-SM-Session"),
                           "connection": self.headers.get("Connection"),
                           "seen": len(SEEN)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

print("child port", args.port, flush=True)
HTTPServer(("127.0.0.1", int(args.port)), Handler).serve_forever()
'''


def test_the_context_carries_the_session_and_refuses_a_malformed_one() -> None:
    base = {"script_path": "/s.py"}
    assert SessionContext.from_dict({**base, "session": KEY}).session == KEY
    assert SessionContext.from_dict(base).session == ""
    for bad in ("a b", "x" * 65, 7, "../etc", "k\r\nX: y"):
        with pytest.raises(ContextError, match="'session'"):
            SessionContext.from_dict({**base, "session": bad})


def test_the_manager_writes_the_execution_uuid_into_the_context() -> None:
    from manager.sessions.spec import context_document

    document = context_document(
        script_filename="s.py", parameters={}, user_id=1, user_level="operator",
        project_id=2, project_name="P", session=KEY,
    )  # fmt: skip
    assert SessionContext.from_dict(document).session == KEY


def test_the_app_answers_its_own_session_and_refuses_another(session_files: SessionFiles) -> None:
    context_file, _ = session_files(ECHO_SCRIPT, session=KEY)
    context = load_context(context_file)
    app = create_app(context, secret_key="test")
    namespace = run_script(app, context)
    client = app.test_client()
    mine = client.get("/echo", headers={"X-SM-Session": KEY})
    assert mine.status_code == 200
    assert mine.get_json() == {"session_header": None, "seen": 1}  # the script never sees it
    for header in (OTHER, "", KEY.upper(), KEY + " "):
        refused = client.get("/echo", headers={"X-SM-Session": header})
        assert refused.status_code == 421, header
        assert refused.headers["X-SM-Session-Mismatch"] == "1"
        assert b"another session" in refused.data
    refused = client.post("/echo", headers={"X-SM-Session": OTHER}, data=b"secret")
    assert refused.status_code == 421
    # A strict server (waitress) refuses hop-by-hop headers from an app (PEP 3333): none here.
    answered: list[Any] = []
    environ = EnvironBuilder(path="/echo", headers={"X-SM-Session": OTHER}).get_environ()
    body = app.wsgi_app(environ, lambda status, headers: answered.extend([status, headers]))
    assert answered[0].startswith("421 ") and b"".join(body)
    assert not [name for name, _ in answered[1] if is_hop_by_hop(name)]
    # Without the header (a health check, a test): served.
    assert client.get("/_sm/health").status_code == 200
    assert client.get("/echo").status_code == 200
    assert namespace["SEEN"] == ["/echo", "/echo"]  # no refused request reached the script


def test_a_context_without_a_session_refuses_any_named_one(session_files: SessionFiles) -> None:
    context_file, _ = session_files(ECHO_SCRIPT)
    context = load_context(context_file)
    app = create_app(context, secret_key="test")
    run_script(app, context)
    assert app.test_client().get("/echo", headers={"X-SM-Session": KEY}).status_code == 421


def test_legacy_scripts_serve_behind_the_relay_only_with_a_session() -> None:
    plain = SessionContext(script_path="s.py", port=8080)
    keyed = SessionContext(script_path="s.py", port=8080, session=KEY)
    assert child_port(plain) == 8080 and child_port(keyed) == 8081
    assert legacy_arguments(keyed)[4:6] == ["--port", "8081"]
    assert child_port(SessionContext(script_path="s.py", port=65535, session=KEY)) == 65534


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _get(port: int, session: str | None, path: str = "/echo") -> bytes:
    header = f"X-SM-Session: {session}\r\n" if session is not None else ""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n{header}\r\n"
    return _exchange(port, request.encode())


def test_the_relay_refuses_another_session_before_the_legacy_script_sees_it(
    start_runner: Callable[..., subprocess.Popen[str]],
) -> None:
    port = _free_port()
    while port == 65535 or _port_taken(port + 1):
        port = _free_port()
    proc = start_runner(LEGACY_ECHO, name="legacy.py", port=port, session=KEY)
    deadline = time.monotonic() + 30
    while True:  # once the relay listens it answers 502 until the script serves
        try:
            answer = _get(port, None)
        except ConnectionRefusedError:  # the runner's Python is still starting
            answer = b""
        if answer.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
            break
        assert answer in (b"",) or answer.startswith(b"HTTP/1.1 502"), answer
        time.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    mine = json.loads(_get(port, KEY).partition(b"\r\n\r\n")[2])
    # The header is removed, and the script is told to close after its answer: every request
    # comes on a new connection, and the relay checks each.
    assert mine["session_header"] is None and mine["connection"] == "close"
    seen = mine["seen"]
    refused = _get(port, OTHER)
    assert refused.startswith(b"HTTP/1.1 421"), refused
    assert b"X-SM-Session-Mismatch: 1" in refused
    duplicated = f"GET /echo HTTP/1.1\r\nX-SM-Session: {KEY}\r\nX-SM-Session: {OTHER}\r\n\r\n"
    assert _exchange(port, duplicated.encode()).startswith(b"HTTP/1.1 421")
    huge = b"GET /echo HTTP/1.1\r\nX-Pad: " + b"a" * 70_000 + b"\r\n\r\n"
    assert _exchange(port, huge).startswith(b"HTTP/1.1 431")
    after = json.loads(_get(port, KEY).partition(b"\r\n\r\n")[2])
    assert after["seen"] == seen + 1  # none of the refused requests reached the script
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert f"child port {port + 1}" in output


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
