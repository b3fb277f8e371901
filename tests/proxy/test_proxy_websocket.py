"""WebSocket connections are relayed to the session both ways."""

from __future__ import annotations

import pytest
import websocket
from conftest import Manager


def ws_url(manager: Manager, session: str) -> str:
    return manager.url(session, "/ws").replace("http://", "ws://", 1)


def test_websocket_echo_through_the_proxy(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    cookie = any_manager.cookie(http, "alice")
    ws = websocket.create_connection(
        ws_url(any_manager, "alice"),
        cookie=cookie,
        origin=any_manager.origin("alice"),
        timeout=10,
    )
    try:
        for text in ("hello", "x" * 200_000, "é ü"):
            ws.send(text)
            assert ws.recv() == f"echo: {text}"
        ws.send_binary(b"\x00\x01\x02")
        assert ws.recv() == b"\x00\x01\x02"
    finally:
        ws.close()
    # The server is fine afterwards.
    assert http.get(any_manager.url("alice", "/echo"), timeout=10).status_code == 200


def test_websocket_needs_a_login_and_the_right_user(any_manager: Manager) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as anonymous:
        websocket.create_connection(ws_url(any_manager, "alice"), timeout=10)
    assert anonymous.value.status_code == 401
    http = any_manager.login("bob")
    with pytest.raises(websocket.WebSocketBadStatusException) as other:
        websocket.create_connection(
            ws_url(any_manager, "alice"),
            timeout=10,
            cookie=any_manager.cookie(http, "bob") + "; " + any_manager.cookie(http),
        )
    assert other.value.status_code == 401  # Bob's cookies mean nothing on Alice's host
    own = any_manager.login("alice")
    with pytest.raises(websocket.WebSocketBadStatusException) as elsewhere:
        websocket.create_connection(
            ws_url(any_manager, "alice"),
            timeout=10,
            cookie=any_manager.cookie(own, "alice"),
            origin="http://evil.localhost",
        )
    assert elsewhere.value.status_code == 403  # only the session's own pages may connect


def test_websocket_to_a_plain_route_gets_its_answer(any_manager: Manager) -> None:
    """A refused upgrade is relayed as it is: werkzeug answers 400 outside websocket rules."""
    http = any_manager.login("alice")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            any_manager.url("alice", "/status/404").replace("http", "ws"),
            cookie=any_manager.cookie(http, "alice"),
            timeout=10,
        )
    assert refused.value.status_code == 400
    assert b"Bad Request" in refused.value.resp_body
