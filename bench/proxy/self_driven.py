"""A gunicorn config under which the manager's gevent worker measures its own proxy.

``post_worker_init`` starts, as greenlets in the worker itself, a trivial upstream (canned
keep-alive responses) and a client that sends the small request over one kept-alive
connection, many times, timing the worker's CPU (getrusage) per request. With everything in one
process on one CPU nothing depends on where the scheduler puts whom, and the figure is steady to
about 2 %: what the proxy costs, plus a small and fixed share for the client and the upstream.

Settings (environment): SM_BENCH_UPSTREAM_PORT (the session's port), SM_DRIVE_PORT (the
worker's own), SM_DRIVE_REQUESTS and SM_DRIVE_RUNS, SM_DRIVE_OUT (a JSON list of us per request,
one a run). The master is stopped when done. Used by ``cpu_per_request.py``.
"""

from __future__ import annotations

import json
import os
import resource
import socket
from typing import Any

BODY = b"hello from the session\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: Sat, 05 Dec 2026 22:00:00 GMT\r\n"
    b"Connection: keep-alive\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY
)
WARM_UP = 2000


def post_worker_init(worker: Any) -> None:
    import gevent

    gevent.spawn(_drive)


def _serve_upstream(conn: socket.socket, _address: Any) -> None:
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
        _, _, buffer = buffer.partition(b"\r\n\r\n")
        conn.sendall(RESPONSE)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _drive() -> None:
    import bench_proxy as bench
    import gevent
    from gevent.server import StreamServer

    StreamServer(("127.0.0.1", int(os.environ["SM_BENCH_UPSTREAM_PORT"])), _serve_upstream).start()
    port = int(os.environ["SM_DRIVE_PORT"])
    base = f"http://localhost:{port}"
    while True:
        try:
            http, user_id = bench.login(base, bench.USERNAME, bench.PASSWORD)
            break
        except OSError:  # the worker is not serving yet
            gevent.sleep(0.1)
    prefix = f"/project/1/script/1/user/{user_id}"
    headers = "".join(f"{line}\r\n" for line in bench.enter(http, base, prefix))
    request = f"GET {prefix}/ HTTP/1.1\r\n{headers}\r\n".encode()
    client = socket.create_connection(("127.0.0.1", port))
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange() -> None:
        client.sendall(request)
        received = b""
        while not received.endswith(BODY):
            data = client.recv(65536)
            if not data:
                raise ConnectionError("the proxy closed the connection")
            received += data
        if not received.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(received[:200].decode("latin-1"))

    for _ in range(WARM_UP):
        exchange()
    count = int(os.environ.get("SM_DRIVE_REQUESTS", "20000"))
    results = []
    for _ in range(int(os.environ.get("SM_DRIVE_RUNS", "5"))):
        began = _cpu()
        for _ in range(count):
            exchange()
        results.append(1e6 * (_cpu() - began) / count)
    with open(os.environ["SM_DRIVE_OUT"], "w") as out:
        json.dump(results, out)
    os.kill(os.getppid(), 15)
