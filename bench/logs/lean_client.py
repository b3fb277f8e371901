"""A lean Socket.IO watcher for the log benchmarks: raw WebSocket, Engine.IO v4 text frames.

The stock python-socketio client spends more CPU per message than a benchmark host can give
100 of them; this one only answers pings, finds the lines in each ``lines`` frame with two
regular expressions, checks their order and notes each timed line's latency. Lines printed by
the bench script are ``<n> <send time>``; the container and this host share the clock.

It opens its WebSocket as a browser does, offering compression (``permessage-deflate``, which
Chromium and Firefox always offer), and reads the frames itself: when the server accepts the
offer, every message comes deflated and is inflated here, as a browser would.

``Watchers`` runs N of them over a few processes (one selector loop each) and gathers results.
"""

from __future__ import annotations

import multiprocessing
import re
import selectors
import time
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any

import websocket

SEQ = re.compile(rb'\[(\d+),"\d{4}-')
TIMED = re.compile(rb'"stdout","(\d+) (\d+\.\d+)"')
LINES_EVENT = b'42/logs,["lines",'
VIEWERS_EVENT = b'42/logs,["viewers",'
BROWSER_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692: taken off each message by the sender


@dataclass
class Result:
    """What one watcher saw."""

    lines: int = 0  # every line received, all streams
    timed: int = 0  # lines carrying a send time
    last_seq: int = 0
    last_n: int = 0
    in_order: bool = True  # seq 1, 2, 3, ... with nothing missing or doubled
    messages: int = 0
    latencies: array = field(default_factory=lambda: array("d"))  # seconds
    error: str = ""
    deflated: bool = False  # the server accepted the offer of compression
    sampled: bool = True  # each line's latency was noted (``latencies``)


class Watcher:
    """One raw WebSocket watcher of one run."""

    def __init__(self, url: str, cookie: str, run_id: str, *, timed: bool = True):
        self.result = Result(sampled=timed)
        self.timed = timed  # else only order and count are checked: see ``_count``
        self.ws = websocket.WebSocket(skip_utf8_validation=True)
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws.connect(ws_url, header=[f"Cookie: {cookie}", BROWSER_OFFER], timeout=30)
        accepted = (self.ws.getheaders() or {}).get("sec-websocket-extensions", "")
        self.result.deflated = "permessage-deflate" in accepted
        # Frames are read here (websocket-client refuses compressed ones): its handshake
        # read the answer byte by byte, so nothing of theirs is buffered there.
        self.sock = self.ws.sock
        self.inflater = zlib.decompressobj(-15)  # the window may be at most 15 bits
        self._buffer = bytearray()
        self._parts: list[bytes] = []
        self._compressed = False
        self._messages: list[bytes] = []
        self._next()  # Engine.IO open: 0{"sid":...}
        self.ws.send("40/logs,")
        answer = self._next()
        if not answer.startswith(b"40/logs"):
            raise RuntimeError(f"namespace refused: {answer!r}")
        self.ws.send(f'42/logs,["join",{{"execution_id":"{run_id}","last_seq":0}}]')
        self.joined = False
        while not self.joined:  # the server sends the viewer count once it is in the room
            self.read()

    def _next(self) -> bytes:
        """The next message, waiting for it."""
        while not self._messages:
            self._receive()
        return self._messages.pop(0)

    def _receive(self) -> None:
        """Read what the socket has and split it into messages (inflated when deflated)."""
        data = self.sock.recv(1 << 20)
        if not data:
            raise OSError("the server closed the connection")
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 2:
            first, second = buffer[start], buffer[start + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(buffer[start + 2 : start + 4], "big"), 4
            elif length == 127:
                length, head = int.from_bytes(buffer[start + 2 : start + 10], "big"), 10
            if len(buffer) - start < head + length:
                break
            payload = bytes(buffer[start + head : start + head + length])
            start += head + length
            opcode = first & 0x0F
            if opcode == 0x9:  # WebSocket ping
                self.ws.pong(payload)
                continue
            if opcode == 0x8:
                raise OSError("the server closed the WebSocket")
            if opcode != 0x0:  # the first frame of a message says whether it is deflated
                self._parts, self._compressed = [], bool(first & 0x40)
            self._parts.append(payload)
            if first & 0x80:  # its last frame
                message = b"".join(self._parts)
                if self._compressed:
                    message = self.inflater.decompress(message + DEFLATE_TAIL)
                self._messages.append(message)
        del buffer[:start]

    def read(self) -> None:
        """Read what the socket has (it is readable): answer pings, count batches of lines."""
        if not self._messages:
            self._receive()
        messages, self._messages = self._messages, []
        for data in messages:
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        result = self.result
        if data == b"2":  # Engine.IO ping
            self.ws.send("3")
            return
        if not data.startswith(LINES_EVENT):
            self.joined = self.joined or data.startswith(VIEWERS_EVENT)
            return
        received = time.time()
        result.messages += 1
        if not self.timed:
            self._count(data)
            return
        seqs = SEQ.findall(data)
        first = int(seqs[0])
        if first != result.last_seq + 1 or int(seqs[-1]) != first + len(seqs) - 1:
            result.in_order = False
        result.last_seq = int(seqs[-1])
        result.lines += len(seqs)
        timed = TIMED.findall(data)
        if timed:
            result.latencies.extend([received - float(sent) for _, sent in timed])
            result.timed += len(timed)
            result.last_n = int(timed[-1][0])

    def _count(self, data: bytes) -> None:
        """Order and completeness from the batch's first and last rows and its row count,
        without reading each line (the bench's lines and the manager's notes never hold
        ``Z","``, which ends each row's stamp)."""
        result = self.result
        tail = data.rfind(b"],[")
        first = int(SEQ.search(data).group(1))  # type: ignore[union-attr]
        last = int(SEQ.match(data, tail + 2).group(1)) if tail >= 0 else first  # type: ignore[union-attr]
        rows = data.count(b'Z","')
        if first != result.last_seq + 1 or last != first + rows - 1:
            result.in_order = False
        result.last_seq = last
        result.lines += rows
        printed = data.count(b'"stdout","')
        if printed:
            result.timed += printed
            result.last_n = int(TIMED.match(data, data.rfind(b'"stdout","')).group(1))  # type: ignore[union-attr]


def _process(
    url: str, cookie: str, run_id: str, indexes: range, timed_every: int, until_n: int,
    timeout: float, queue: Any
) -> None:  # fmt: skip
    """Watchers ``indexes`` on one thread: a selector loop, no lock contention between them.
    Every ``timed_every``-th notes each line's latency."""
    count = len(indexes)
    watchers = [Watcher(url, cookie, run_id, timed=index % timed_every == 0)
                for index in indexes]  # fmt: skip
    queue.put(("ready", count))
    selector = selectors.DefaultSelector()
    for watcher in watchers:
        selector.register(watcher.sock, selectors.EVENT_READ, watcher)
    stop_at = time.time() + timeout
    open_ = len(watchers)
    while open_ and time.time() < stop_at:
        for key, _ in selector.select(timeout=1.0):
            watcher = key.data
            try:
                watcher.read()
            except (OSError, websocket.WebSocketException) as exc:
                watcher.result.error = f"{type(exc).__name__}: {exc}"
                watcher.result.last_n = until_n
            if watcher.result.last_n >= until_n:
                selector.unregister(watcher.sock)
                watcher.ws.close()
                open_ -= 1
    results = [w.result for w in watchers]
    queue.put(("done", [(r.lines, r.timed, r.last_seq, r.last_n, r.in_order, r.messages,
                         r.latencies.tobytes(), r.error, r.deflated, r.sampled)
                        for r in results]))  # fmt: skip


class Watchers:
    """N lean watchers of one run, spread over ``processes`` processes.

    Every ``timed_every``-th watcher (in joining order, so spread over the server's send
    order) notes each line's latency; the others check order and count only. Reading every
    line of 100 watchers at 10,000 lines/s took these processes more CPU than the manager
    spent sending them, on the same two cores.
    """

    def __init__(self, url: str, cookie: str, run_id: str, count: int, until_n: int,
                 timeout: float, processes: int = 2, timed_every: int = 1):  # fmt: skip
        context = multiprocessing.get_context("fork")
        self.queue = context.Queue()
        shares = [count // processes + (1 if i < count % processes else 0)
                  for i in range(processes)]  # fmt: skip
        starts = [sum(shares[:i]) for i in range(processes)]
        self.procs = [
            context.Process(target=_process,
                            args=(url, cookie, run_id, range(start, start + n), timed_every,
                                  until_n, timeout, self.queue))
            for start, n in zip(starts, shares, strict=True) if n
        ]  # fmt: skip
        for proc in self.procs:
            proc.start()
        self.count = count
        self._results: list[Result] = []
        self._ready = 0
        self._done = 0

    def wait_joined(self) -> None:
        while self._ready < self.count:
            kind, value = self.queue.get(timeout=60)
            if kind == "ready":
                self._ready += value
            else:
                self._collect(value)

    def _collect(self, rows: list[Any]) -> None:
        self._done += 1
        for lines, timed, last_seq, last_n, in_order, messages, raw, error, *flags in rows:
            latencies = array("d")
            latencies.frombytes(raw)
            self._results.append(Result(lines, timed, last_seq, last_n, in_order, messages,
                                        latencies, error, *flags))  # fmt: skip

    def results(self) -> list[Result]:
        while self._done < len(self.procs):
            kind, value = self.queue.get()
            if kind == "done":
                self._collect(value)
        for proc in self.procs:
            proc.join()
        return self._results
