"""The seed's older, port-based script interface, run unchanged.

A script whose metadata header says ``@interface: legacy`` parses the seed's arguments and
serves its own Flask app::

    python script.py --data-dir <path> --user-level <level> --port <number> --project-id <id>
                     --project-name <name> --theme <theme> --language <lang>

The runner starts it as a child process with ``--data-dir /workspace`` (the user's project
folder) and ``--port``, the other values from the session's context, and waits for it. The port
is 8080 (the one the proxy reaches in every session container) for a run without a session key;
a proxied run's script gets 8081 and the runner listens on 8080 itself, in front of it
(:class:`SessionRelay`): as the runner's own app does for other scripts (``smrunner.app``), it
refuses a request the proxy meant for another session, so a stale route to an address the engine
gave to this container never reaches the script. Its output goes to the runner's stdout and
stderr, so the capture stores it like any run's. SIGTERM is passed on; the child gets
:data:`STOP_GRACE` seconds to stop before it is killed. Nothing is injected into its globals:
it is an ordinary Python process.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

from smrunner.context import MISDIRECTED_TEXT, MISMATCH_HEADER, SessionContext

log = logging.getLogger("smrunner")

# The header line, inside the leading docstring: "@interface: legacy" (any case and spacing).
INTERFACE_RE = re.compile(r"^\s*@interface\s*:\s*legacy\s*$", re.IGNORECASE | re.MULTILINE)
DOCSTRING_RE = re.compile(r'^\s*(?:#[^\n]*\n|\s)*[rRuU]?("""|\'\'\')(.*?)\1', re.DOTALL)
STOP_GRACE = 10.0
LEVELS = ("admin", "developer", "operator", "viewer")
HEAD_LIMIT = 64 * 1024  # a request head longer than this is refused (431)
HEAD_TIMEOUT = 30.0  # seconds a connection may take to send its request head


def _plain(status: str, text: str, *headers: str) -> bytes:
    body = text.encode()
    lines = [f"HTTP/1.1 {status}", "Content-Type: text/plain; charset=utf-8", *headers]
    lines += ["Connection: close", f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


MISDIRECTED = _plain("421 Misdirected Request", MISDIRECTED_TEXT, ": ".join(MISMATCH_HEADER))
NOT_UP = _plain("502 Bad Gateway", "The script's server is not answering.\n")
TOO_LARGE = _plain("431 Request Header Fields Too Large", "The request head is too large.\n")


def is_legacy(source: str) -> bool:
    """True when the script's leading docstring declares ``@interface: legacy``."""
    match = DOCSTRING_RE.match(source)
    return bool(match and INTERFACE_RE.search(match.group(2)))


def child_port(context: SessionContext) -> int:
    """The port the script serves on: the context's, or the next one behind the relay."""
    if not context.session:
        return context.port
    return context.port + 1 if context.port < 65535 else context.port - 1


def legacy_arguments(context: SessionContext) -> list[str]:
    """The seed's command-line arguments for this session."""
    env = context.environment
    level = str(env.get("USER_LEVEL") or "operator")
    return [
        "--data-dir", context.workspace_path,
        "--user-level", level if level in LEVELS else "operator",
        "--port", str(child_port(context)),
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
    relay = None
    if context.session:
        relay = SessionRelay(context.port, child_port(context), context.session)
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
    finally:
        if relay is not None:
            relay.close()


class SessionRelay:
    """Listens on the session's port in front of a legacy script's own server.

    Each connection's request head is read whole; one naming another session in
    ``X-SM-Session`` gets 421 (with ``X-SM-Session-Mismatch``, so the proxy looks again) and is
    closed. Any other goes to the script with ``X-SM-Session`` removed and ``Connection: close``,
    so the script's server ends the connection after its answer and every request arrives on a
    new, checked connection (a WebSocket upgrade keeps its connection: it is one exchange).
    Then bytes are copied both ways until either side closes.
    """

    def __init__(self, port: int, target_port: int, session: str, host: str = "0.0.0.0") -> None:
        self.target_port = target_port
        self.session = session.encode("ascii")
        self.sock = socket.create_server((host, port), backlog=128)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, name="sm-relay", daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            client.settimeout(HEAD_TIMEOUT)
            data = b""
            while b"\r\n\r\n" not in data:
                if len(data) > HEAD_LIMIT:
                    client.sendall(TOO_LARGE)
                    return
                piece = client.recv(65536)
                if not piece:
                    return
                data += piece
            head, _, rest = data.partition(b"\r\n\r\n")
            forwarded = self._checked_head(head)
            if forwarded is None:
                client.sendall(MISDIRECTED)
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.sendall(NOT_UP)
                return
            client.settimeout(None)
            upstream.settimeout(None)
            upstream.sendall(forwarded + rest)
            threading.Thread(target=_copy, args=(client, upstream), daemon=True).start()
            _copy(upstream, client)  # until the script's server closes: then both go
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)  # wakes the other direction's recv
                    sock.close()

    def _checked_head(self, head: bytes) -> bytes | None:
        """The head to send on, or None when it names another session."""
        request_line, *lines = head.split(b"\r\n")
        kept = [request_line]
        connection = None
        upgrade = False
        for line in lines:
            name = line.partition(b":")[0].strip().lower()
            if name == b"x-sm-session":
                if line.partition(b":")[2].strip() != self.session:
                    return None
            elif name == b"connection":
                connection = line
            else:
                upgrade = upgrade or name == b"upgrade"
                kept.append(line)
        kept.append(connection if upgrade and connection else b"Connection: close")
        return b"\r\n".join(kept) + b"\r\n\r\n"


def _copy(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` ends, then end ``sink``'s sending side."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def read_source(path: str) -> str:
    """The script's text (undecodable bytes replaced); OSError when it cannot be read."""
    return Path(path).read_bytes().decode("utf-8", errors="replace")
