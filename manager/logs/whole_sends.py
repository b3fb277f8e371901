"""Socket.IO's WebSocket frames go out whole, one at a time.

simple-websocket (the WebSocket server under python-engineio here) writes each frame with one
``socket.send``. Under gevent a send on a full buffer takes part of the bytes and returns: the
rest of the frame is dropped and the client reads garbage from there on (seen as "cannot decode"
and a reconnect every few megabytes when a slow client watches a fast run). Its reader thread
also answers pings and closes on the same socket, so frames from two writers could interleave.

``WholeSends`` hands simple-websocket a socket whose ``send`` is ``sendall`` under a lock. It
wraps only the Socket.IO path: the proxy reads the raw socket itself.

It also declines WebSocket compression (permessage-deflate) on that path, by not passing the
browser's offer on. simple-websocket accepts every offer, and every browser makes one; then
each message is deflated once per watcher, on the worker's one event loop: about 0.4 ms of CPU
for a 32 KB batch of log lines, against 15 µs to frame it as it is. 100 browsers watching a run
that prints 10,000 lines/s would need the whole of a core for that alone (bench/logs). The
lines go out as they are, as the proxy's answers and the log exports do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")
EXTENSIONS_OFFER = "HTTP_SEC_WEBSOCKET_EXTENSIONS"


class WholeSocket:
    """A socket whose ``send`` writes every byte, never two frames at once; else the socket."""

    def __init__(self, sock: Any):
        self._sock = sock
        self._sending = threading.Lock()  # gevent's lock once the standard library is patched

    def send(self, data: bytes, flags: int = 0) -> int:
        with self._sending:
            self._sock.sendall(data, flags)
        return len(data)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self.send(data, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class WholeSends:
    """WSGI middleware: requests under ``path`` see their socket as a ``WholeSocket`` and
    make no offer of WebSocket extensions (no compression)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str = "/socket.io"):
        self.app = app
        self.path = "/" + path.strip("/")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == self.path or path.startswith(self.path + "/"):
            environ.pop(EXTENSIONS_OFFER, None)
            for key in SOCKET_KEYS:
                sock = environ.get(key)
                if sock is not None and not isinstance(sock, WholeSocket):
                    environ[key] = WholeSocket(sock)
        return self.app(environ, start_response)
