"""The capture announces the container's address at start: one datagram to the gateway."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from smrunner import capture

# /proc/net/route of a session container (Docker 20.10, internal network 192.168.48.0/20).
ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0130A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0030A8C0\t00000000\t0001\t0\t0\t0\t00F0FFFF\t0\t0\t0
"""
# network_mode "none": no interface but loopback, so no route at all.
NO_ROUTES = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def test_the_default_gateway_is_read_from_the_route_table() -> None:
    assert capture.default_gateway(ROUTES) == "192.168.48.1"


@pytest.mark.parametrize(
    "routes",
    [
        NO_ROUTES,
        "",
        # a default route without the gateway flag (a device route) names no gateway
        NO_ROUTES + "eth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n",
    ],
)
def test_no_gateway_without_a_default_route_through_one(routes: str) -> None:
    assert capture.default_gateway(routes) is None


def test_the_announcement_is_one_empty_datagram_to_the_gateway_discard_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    monkeypatch.setattr(capture, "DISCARD_PORT", receiver.getsockname()[1])
    routes = tmp_path / "route"
    routes.write_text(NO_ROUTES + "lo\t00000000\t0100007F\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    try:
        capture.announce_address(str(routes))
        data, _ = receiver.recvfrom(64)
    finally:
        receiver.close()
    assert data == b""


def test_no_route_table_or_no_gateway_sends_nothing_and_raises_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[object, ...]] = []
    monkeypatch.setattr(capture._socket, "socket", lambda *args: opened.append(args))
    capture.announce_address(str(tmp_path / "missing"))
    (tmp_path / "route").write_text(NO_ROUTES)
    capture.announce_address(str(tmp_path / "route"))
    assert opened == []
