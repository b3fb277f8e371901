"""A trivial keep-alive upstream: canned responses from a raw socket server, one thread per
connection, so that in a CPU-per-request measurement nearly all the work is the proxy's.

    python bench/proxy/raw_upstream.py PORT [DELAY_MS]

DELAY_MS: a pause before each answer (the container's own work), so that the proxy always
waits for the response as it does behind a real application.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from email.utils import formatdate

SMALL_BODY = b"hello from the session\n"


def response(body: bytes, content_type: bytes) -> bytes:
    """A response head as gunicorn writes one (Server, Date, Connection), and the body."""
    return (
        b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: "
        + formatdate(usegmt=True).encode()
        + b"\r\nConnection: keep-alive\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )


def serve(conn: socket.socket, small: bytes, big: bytes, delay: float) -> None:
    buffer = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            if delay:
                time.sleep(delay)
            conn.sendall(big if path.endswith(b"/big") else small)


def main() -> None:
    small = response(SMALL_BODY, b"text/plain; charset=utf-8")
    big = response(bytes(range(256)) * 4096, b"application/octet-stream")
    delay = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn, small, big, delay), daemon=True).start()


if __name__ == "__main__":
    main()
