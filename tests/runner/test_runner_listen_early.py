"""A proxied session listens before Flask and the script load: the first request waits in the
backlog and is answered once the app serves, instead of being refused meanwhile."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

from runner_support import SEED_SCRIPT, free_port, wait_for_line

StartRunner = Callable[..., subprocess.Popen[str]]
SESSION = "0b7c2f3e-1d2a-4c5b-9e8f-a1b2c3d4e5f6"
# Loads for a while before it has routes: the proxy's first request comes meanwhile.
SLOW_SCRIPT = "import time\nprint('loading', flush=True)\ntime.sleep(1.5)\n" + SEED_SCRIPT


def _connect(port: int, timeout: float = 15) -> socket.socket:
    """Connect to the runner's port, retrying while nothing listens yet (the interpreter starts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _answer(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /_sm/health HTTP/1.1\r\nHost: runner\r\nConnection: close\r\n\r\n")
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_request_sent_while_the_script_loads_is_answered_once_it_serves(
    start_runner: StartRunner,
) -> None:
    port = free_port()
    proc = start_runner(SLOW_SCRIPT, port=port, session=SESSION)
    wait_for_line(proc, "loading")
    with _connect(port) as early:  # accepted by the kernel: the runner listens already
        sent = time.monotonic()
        answer = _answer(early)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b'{"status":"ok"}' in answer
    assert time.monotonic() - sent > 0.5  # it waited for the script, it was not refused
    wait_for_line(proc, "serving on")
    proc.terminate()
    proc.wait(timeout=15)


def test_an_unproxied_run_listens_only_when_it_serves(start_runner: StartRunner) -> None:
    port = free_port()
    proc = start_runner(SLOW_SCRIPT, port=port)  # no session: not behind the proxy
    wait_for_line(proc, "loading")
    time.sleep(0.2)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        listening = True
    except ConnectionRefusedError:
        listening = False
    assert not listening
    proc.terminate()
    proc.wait(timeout=15)


def test_a_script_that_serves_nothing_resets_the_waiting_request(
    start_runner: StartRunner,
) -> None:
    """The runner exits (no routes): a request waiting in the backlog ends at once, reset or
    closed, as a refused connection would; it does not hang."""
    port = free_port()
    script = "import time\nprint('loading', flush=True)\ntime.sleep(1.0)\nprint('done')\n"
    proc = start_runner(script, port=port, session=SESSION)
    wait_for_line(proc, "loading")
    with _connect(port) as early:
        try:
            answer = _answer(early)
        except ConnectionResetError:
            answer = b""
    assert answer == b""
    assert proc.wait(timeout=15) == 0
