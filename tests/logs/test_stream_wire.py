"""What a live log message costs the manager to send: on the wire and in the worker.

The real gunicorn gevent worker (``test_stream.Server``) and a raw WebSocket client that makes
the offer every browser makes (permessage-deflate): the manager declines it, so a batch of lines
is framed once per watcher, never deflated once per watcher. And a batch goes to python-socketio
as tuples, so it does not look at each line for binary data before sending it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio
import websocket
from sqlalchemy import create_engine

from manager.logs.hub import LogHub, LogSettings
from manager.logs.store import Line
from manager.logs.stream import ALL, LiveLogs
from tests.logs.test_stream import Server, cookie_of

CHROMIUM_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    instance = Server(tmp_path_factory.mktemp("wire"))
    yield instance
    instance.stop()


def raw_watcher(server: Server, run_id: str) -> websocket.WebSocket:
    """A WebSocket client joined to the run's room, offering compression as Chromium does."""
    url = server.base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    cookie = cookie_of(server.login("olga"))
    ws = websocket.create_connection(url, header=[f"Cookie: {cookie}", CHROMIUM_OFFER], timeout=30)
    ws.recv()  # Engine.IO open
    ws.send("40/logs,")
    assert ws.recv().startswith("40/logs")
    ws.send(f'42/logs,["join",{{"execution_id":"{run_id}","last_seq":0}}]')
    return ws


def test_a_browser_offer_of_compression_is_declined_and_every_line_arrives(server):
    run_id = server.start_run()
    ws = raw_watcher(server, run_id)
    try:
        assert "sec-websocket-extensions" not in {k.lower() for k in ws.getheaders()}
        server.emit(run_id, 3000)
        seqs: list[int] = []
        texts: list[str] = []
        deadline = time.monotonic() + 60
        while "line 3000" not in texts[-1:]:
            assert time.monotonic() < deadline, f"{len(texts)} lines after 60 s"
            # A compressed frame (RSV1 set) would make this client raise: it has no inflater.
            opcode, data = ws.recv_data()
            if data == b"2":
                ws.send("3")
            elif data.startswith(b'42/logs,["lines",'):
                lines = json.loads(data[len(b"42/logs,") :])[1]["lines"]
                seqs += [row[0] for row in lines]
                texts += [row[3] for row in lines if row[2] == "stdout"]
        assert opcode == websocket.ABNF.OPCODE_TEXT
        assert seqs == list(range(1, len(seqs) + 1))
        assert texts == [f"line {n}" for n in range(1, 3001)]
    finally:
        ws.close()
        server.finish(run_id)


def test_a_batch_is_sent_without_a_look_at_each_line(tmp_path: Path, monkeypatch):
    """python-socketio looks for binary data in every list and dict it sends; a batch of
    lines is tuples, which it leaves alone, and still a JSON array of ``[seq, ts, stream,
    text]`` arrays."""
    looked: list[object] = []
    original = socketio.packet.Packet.data_is_binary.__func__  # type: ignore[attr-defined]

    def counted(cls: type, data: object) -> bool:
        looked.append(data)
        return bool(original(cls, data))

    monkeypatch.setattr(socketio.packet.Packet, "data_is_binary", classmethod(counted))
    server = socketio.Server(async_mode="threading")
    sent: list[str] = []
    server._send_eio_packet = lambda _sid, packet: sent.append(packet.data)  # type: ignore[method-assign]
    server.manager.initialize()
    sid = server.manager.connect("eio-watcher", "/logs")
    live = LiveLogs(server, LogHub(LogSettings(tmp_path), create_engine("sqlite://")))
    live.join(sid, "run", 1, tmp_path / "none.log", 0, ALL)
    lines = [Line(n, "2026-12-05T10:00:00.000Z", "stdout", f"line {n}") for n in range(1, 2001)]
    live.publish("run", lines)
    looked.clear()
    live.tick()
    batches = [json.loads(data[data.index("[") :]) for data in sent if '"lines"' in data]
    received = [row for _event, payload in batches for row in payload["lines"]]
    assert received == [[n, "2026-12-05T10:00:00.000Z", "stdout", f"line {n}"]
                        for n in range(1, 2001)]  # fmt: skip
    assert len(looked) < 10 * len(batches), "a look at each line"
