"""A session stand-in that writes canned raw HTTP responses, malformed ones included: what a
hostile script's own server could send (a real Flask app cannot emit them)."""

from __future__ import annotations

import socket
import threading

RESPONSES = {
    # A bare LF would smuggle a Set-Cookie for the manager's session past the cookie rewriting.
    "/lf": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\nSet-Cookie: sm_session=evil\r\n\r\nok",
    "/cr": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\rSet-Cookie: sm_host=evil\r\n\r\nok",
    "/ctl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\x01c\r\n\r\nok",
    "/fold": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n Set-Cookie: x=1\r\n\r\nok",
    "/cors": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nAccess-Control-Allow-Origin: *\r\n"
        b"Access-Control-Allow-Credentials: true\r\nAccess-Control-Allow-Methods: POST\r\n"
        b"X-Content-Type-Options: off\r\nContent-Security-Policy: default-src 'self'\r\n"
        b"Set-Cookie: sm_host=forged; Path=/\r\n\r\nok"
    ),
    # What a runner answers a request meant for another session (smrunner.app.SessionGuard);
    # the body stands for that other session's data, which must never reach the client.
    "/misdirected": (
        b"HTTP/1.1 421 Misdirected Request\r\nX-SM-Session-Mismatch: 1\r\n"
        b"Content-Length: 26\r\n\r\nANOTHER-SESSIONS-SECRET-42"
    ),
}
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class RawServer:
    """Answers each request on a loopback port with ``RESPONSES[path]``, then closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    path = data.split(b" ", 2)[1].decode() if data.count(b" ") >= 2 else "/"
                    conn.sendall(RESPONSES.get(path.split("?")[0], NOT_FOUND))
                except OSError:
                    continue

    def close(self) -> None:
        self.sock.close()
