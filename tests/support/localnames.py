"""Name resolution as browsers do it, for test and benchmark clients."""

from __future__ import annotations


def resolve_localhost_names() -> None:
    """Resolve every ``*.localhost`` name to loopback in the test process, as browsers do
    (RFC 6761); glibc here does not. Session hosts are ``<label>.localhost`` by default."""
    import socket

    original = socket.getaddrinfo
    if getattr(original, "sm_localhost", False):
        return

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.lower().rstrip(".").endswith(".localhost"):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    getaddrinfo.sm_localhost = True  # type: ignore[attr-defined]
    socket.getaddrinfo = getaddrinfo
