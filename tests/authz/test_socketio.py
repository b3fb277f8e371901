"""Socket.IO events × callers, with the real python-socketio client against a live server
(gunicorn, gevent worker; the harness of ``tests/logs/test_stream.py``).

Events of the ``/logs`` namespace: connect, join (a run's lines), leave, join_user (my status
room). Callers: anonymous, a logged-out cookie, a forged cookie, the run's owner, another
operator, an admin. Plus the join payloads a hostile client might send instead of a run id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import socketio

from tests.logs.test_stream import Server, cookie_of

NAMESPACE = "/logs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    instance = Server(tmp_path_factory.mktemp("authz-socketio"))
    yield instance
    instance.stop()


class Client:
    """One Socket.IO connection that records what it is sent."""

    def __init__(self, server: Server, cookie: str | None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.sio = socketio.Client(reconnection=False)
        for name in ("lines", "error", "status", "viewers"):
            self.sio.on(name, self._recorder(name), namespace=NAMESPACE)
        headers = {"Cookie": cookie} if cookie else {}
        self.sio.connect(server.base, headers=headers, namespaces=[NAMESPACE],
                         transports=["websocket"], wait_timeout=10)  # fmt: skip

    def _recorder(self, name: str) -> Any:
        return lambda data=None: self.events.append((name, data))

    def emit(self, event: str, data: Any) -> None:
        self.sio.emit(event, data, namespace=NAMESPACE)

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    def wait_for(self, name: str, timeout: float = 10) -> list[Any]:
        deadline = time.monotonic() + timeout
        while not self.of(name):
            assert time.monotonic() < deadline, (name, self.events)
            time.sleep(0.05)
        return self.of(name)

    def close(self) -> None:
        self.sio.disconnect()


def refused_to_connect(server: Server, cookie: str | None) -> bool:
    try:
        Client(server, cookie).close()
    except socketio.exceptions.ConnectionError:
        return True
    return False


def test_connect_needs_a_live_login(server: Server) -> None:
    assert refused_to_connect(server, None)
    http = server.login("olga")
    cookie = cookie_of(http)
    assert not refused_to_connect(server, cookie)
    value = http.cookies["sm_session"]
    forged = "sm_session=" + value[:-10] + ("a" if value[-10] != "a" else "b") + value[-9:]
    assert refused_to_connect(server, forged)
    assert http.post(server.base + "/api/auth/logout", timeout=10).status_code == 200
    assert refused_to_connect(server, cookie), "a logged-out session still connects"


def test_join_a_run_owner_and_admin_only(server: Server) -> None:
    run_id = server.start_run("olga")
    server.emit(run_id, 5)
    names = ("olga", "bob", "root")
    callers = {name: Client(server, cookie_of(server.login(name))) for name in names}
    try:
        for client in callers.values():
            client.emit("join", {"execution_id": run_id, "last_seq": 0})
        assert len(callers["olga"].wait_for("lines")) >= 1
        assert len(callers["root"].wait_for("lines")) >= 1  # admins may watch any run
        error = callers["bob"].wait_for("error")[0]
        assert error["execution_id"] == run_id and "line" not in str(error)
        server.emit(run_id, 5, start=6)
        time.sleep(0.5)
        assert callers["bob"].of("lines") == [] and callers["bob"].of("viewers") == []
        # Leaving a room one never joined changes nothing for those in it.
        callers["bob"].emit("leave", {"execution_id": run_id})
        server.emit(run_id, 1, start=11)
        deadline = time.monotonic() + 10
        while "line 11" not in str(callers["olga"].of("lines")):
            assert time.monotonic() < deadline, callers["olga"].events
            time.sleep(0.05)
        assert callers["bob"].of("lines") == []
    finally:
        for client in callers.values():
            client.close()
        server.finish(run_id)


def hostile_ids(run_id: str) -> list[Any]:
    return [
        run_id.upper(),
        f" {run_id}",
        f"{run_id}/",
        f"{run_id}%2F",
        f"../{run_id}",
        f"..%2F{run_id}",
        f"%252e%252e%252f{run_id}",
        run_id.replace("-", ""),
        f"{run_id}\x00",
        "*",
        "%",
        "",
        None,
        1,
        [run_id],
        {"$ne": ""},
        "x" * 10_000,
    ]


def test_join_with_hostile_ids_gets_nothing(server: Server) -> None:
    run_id = server.start_run("olga")
    server.emit(run_id, 3)
    bob = Client(server, cookie_of(server.login("bob")))
    try:
        for value in hostile_ids(run_id):
            bob.emit("join", {"execution_id": value, "last_seq": 0})
        for payload in (None, run_id, [run_id], 7, {"last_seq": "many"}):
            bob.emit("join", payload)
        server.emit(run_id, 3, start=4)
        time.sleep(1.0)
        assert bob.of("lines") == [], bob.of("lines")[:2]
        # The server is still up and answering: a proper join of bob's own run works.
        own = server.start_run("bob")
        server.emit(own, 2)
        bob.emit("join", {"execution_id": own, "last_seq": 0})
        assert bob.wait_for("lines")[0]["execution_id"] == own
        server.finish(own)
    finally:
        bob.close()
        server.finish(run_id)


def test_join_user_is_my_own_room_whatever_the_payload(server: Server) -> None:
    ids = {}
    for name in ("olga", "bob"):
        me = requests.Session()
        me.cookies.update(server.login(name).cookies)
        ids[name] = me.get(server.base + "/api/auth/user", timeout=10).json()["user"]["id"]
    bob = Client(server, cookie_of(server.login("bob")))
    try:
        for payload in ({"user_id": ids["olga"]}, ids["olga"], f"user:{ids['olga']}", None):
            bob.emit("join_user", payload)
        time.sleep(0.3)
        olgas = server.start_run("olga")
        server.finish(olgas)
        bobs = server.start_run("bob")  # bob hears of his own run: the room works
        server.finish(bobs)
        deadline = time.monotonic() + 10
        while not any(s["execution_id"] == bobs for s in bob.of("status")):
            assert time.monotonic() < deadline, bob.events
            time.sleep(0.05)
        assert all(s["execution_id"] != olgas for s in bob.of("status")), bob.of("status")
    finally:
        bob.close()
