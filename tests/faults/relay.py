"""A byte relay the test controls, put between the manager and a service it depends on.

``Relay(listen, target)`` forwards every connection made to ``listen`` (a unix socket path or
a TCP port on 127.0.0.1) to ``target``. ``cut()`` closes the listener and every open
connection, so the manager sees the service go away (connections reset, new ones refused),
exactly as if the engine or the database had died; ``resume()`` listens again on the same
address. This is how the fault tests "restart" the shared Docker engine and PostgreSQL
server without touching them.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from pathlib import Path


def _connect(target: str | tuple[str, int]) -> socket.socket:
    if isinstance(target, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect(target)
    return sock


class Relay:
    """Forward connections from ``listen`` to ``target`` until ``cut``; see the module."""

    def __init__(self, listen: str | int, target: str | tuple[str, int]):
        self.listen = listen
        self.target = target
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``unix://<path>`` or ``127.0.0.1:<port>``."""
        if isinstance(self.listen, str):
            return f"unix://{self.listen}"
        return f"127.0.0.1:{self.listen}"

    def resume(self) -> Relay:
        if isinstance(self.listen, str):
            if os.path.exists(self.listen):
                os.unlink(self.listen)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(self.listen)
        else:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", self.listen))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux)
            server.close()
            if isinstance(self.listen, str):
                Path(self.listen).unlink(missing_ok=True)
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # cut
            try:
                upstream = _connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._server is not server:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        try:
            while True:
                ready, _, _ = select.select(list(pair), [], [], 1.0)
                if client.fileno() < 0 or upstream.fileno() < 0:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            for sock in pair:
                sock.close()
