"""Socket reads with one timer per socket (``waits.Reader``): the same timeouts as gevent's own.

Under gevent the checks run in a child process (monkey patching cannot be undone in this one);
a plain socket is read in this process, where the socket's own timeout holds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from manager.proxy.waits import Reader

REPO = Path(__file__).resolve().parents[2]

UNDER_GEVENT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import json
    import socket
    import time

    import gevent

    from manager.proxy.upstream import Connection, UpstreamError, read_head
    from manager.proxy.waits import Reader

    results = {}
    view = memoryview(bytearray(100))

    def timed(reader, **kwargs):
        began = time.monotonic()
        try:
            return reader.recv_into(view, **kwargs), time.monotonic() - began
        except OSError as exc:
            return type(exc).__name__, time.monotonic() - began

    ours, theirs = socket.socketpair()
    reader = Reader(ours, 0.3)
    results["gevent socket"] = reader._raw is not None
    for wait_first in (False, True):
        results[f"silence, wait first {wait_first}"] = timed(reader, wait_first=wait_first)
    theirs.sendall(b"abc")
    results["data there"] = timed(reader)
    results["waited for data there"] = reader.waited
    gevent.spawn_later(0.05, theirs.sendall, b"later")
    results["data later, wait first"] = timed(reader, wait_first=True)
    gevent.spawn_later(0.05, theirs.sendall, b"x")
    results["data later"] = timed(reader)
    results["waited for data later"] = reader.waited
    theirs.sendall(b"ready")
    results["data there, wait first"] = timed(reader, wait_first=True)
    results["silence again"] = timed(reader)  # the timer is reused after a timeout
    for _ in range(4):  # waits that end in time add up to more than the timeout
        gevent.spawn_later(0.1, theirs.sendall, b"x")
        timed(reader, wait_first=True)
    results["silence after waits"] = timed(reader)  # each wait has the whole timeout
    gevent.spawn_later(0.05, theirs.close)
    results["peer closes"] = timed(reader, wait_first=True)

    ours, theirs = socket.socketpair()
    reader = Reader(ours, 5)
    gevent.spawn_later(0.05, ours.close)
    results["closed while waiting"] = timed(reader)
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    gevent.spawn_later(0.05, ours.close)
    try:
        ours.recv_into(view)
    except OSError as exc:
        results["gevent's own, closed while waiting"] = type(exc).__name__

    ours, theirs = socket.socketpair()
    ours.settimeout(0.3)
    try:
        read_head(Connection(ours, ("test", 0)), "GET")
    except UpstreamError as exc:
        results["silent container"] = [str(exc), exc.before_response]
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def under_gevent() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", UNDER_GEVENT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results: dict[str, object] = json.loads(done.stdout)
    return results


def test_the_gevent_path_is_taken(under_gevent: dict[str, object]) -> None:
    assert under_gevent["gevent socket"] is True


@pytest.mark.parametrize(
    "case",
    [
        "silence, wait first False",
        "silence, wait first True",
        "silence again",
        "silence after waits",
    ],
)
def test_a_silent_peer_times_out_after_the_timeout(
    under_gevent: dict[str, object], case: str
) -> None:
    outcome, waited = under_gevent[case]  # type: ignore[misc]
    assert outcome == "TimeoutError"
    assert 0.28 <= waited < 1.5


@pytest.mark.parametrize(
    ("case", "count"),
    [
        ("data there", 3),
        ("data later, wait first", 5),
        ("data later", 1),
        ("data there, wait first", 5),
        ("peer closes", 0),
    ],
)
def test_data_is_read_when_it_comes(under_gevent: dict[str, object], case: str, count: int) -> None:
    outcome, waited = under_gevent[case]  # type: ignore[misc]
    assert outcome == count and waited < 0.25


def test_a_reader_says_whether_its_last_read_waited(under_gevent: dict[str, object]) -> None:
    """The keep-alive loop waits first for a client whose last request had to be waited for."""
    assert under_gevent["waited for data there"] is False
    assert under_gevent["waited for data later"] is True


def test_closing_the_socket_ends_the_wait(under_gevent: dict[str, object]) -> None:
    outcome, waited = under_gevent["closed while waiting"]  # type: ignore[misc]
    assert outcome == under_gevent["gevent's own, closed while waiting"] and waited < 1


def test_a_silent_container_is_an_upstream_error_after_the_read_timeout(
    under_gevent: dict[str, object],
) -> None:
    message, before_response = under_gevent["silent container"]  # type: ignore[misc]
    assert message == "reading response: timed out" and before_response is True


def test_a_plain_socket_keeps_its_own_timeout() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.2)
        reader = Reader(ours, 30.0)  # not gevent's socket: its own timeout applies
        with pytest.raises(TimeoutError):
            reader.recv_into(memoryview(bytearray(10)))
        theirs.sendall(b"ok")
        assert reader.recv_into(memoryview(bytearray(10)), wait_first=True) == 2
