"""A new session container makes its address known on its bridge as it starts.

Docker 20.10 (Debian's engine) does not announce a container's address. The engine hands an
ended container's address to the next container, and when the host had sent a packet to that
address while nobody held it (the proxy closing its connection to the session that had it), the
host's pending lookup was asked again only after a second: the new session's first page waited
that long (bench/sessions/probe_start.py: cold first page 1.16 s p50, 476 ms with the
announcement; a pooled one handed over just after it became ready 819 ms, 62 ms). The runner's
capture now sends one datagram to its gateway at start, and the ARP request that costs tells
every host on the bridge where the address is.

These tests look at the host's neighbour table (``/proc/net/arp``) for the test's own sessions,
on the test's own bridge: a session container's address is there without the host having sent
it anything, and a plain container's on the same network is not (so the entry comes from the
runner, not from the engine).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from manager.sessions.backend import LABEL_INSTANCE
from manager.sessions.docker import DockerBackend
from tests.sessions.session_support import TEST_BRIDGES, TEST_INSTANCE, SessionFactory

SERVE = "app.add_url_rule('/', 'index', lambda: 'announced')\n"
COMPLETE = 0x2  # ATF_COM: the entry has a hardware address


def neighbour(address: str, device: str) -> str | None:
    """The hardware address the host knows for ``address`` on ``device``, or None."""
    with open("/proc/net/arp") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            if fields[0] == address and fields[5] == device and int(fields[2], 16) & COMPLETE:
                return fields[3]
    return None


def wait_neighbour(address: str, device: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = neighbour(address, device)
        if found:
            return found
        time.sleep(0.05)
    return None


@pytest.mark.docker
def test_a_session_container_announces_its_address_on_its_bridge(
    sessions: SessionFactory, backend: DockerBackend, docker_client: Any, env_image: str
) -> None:
    network = backend.network_status().networks["internal"]
    bridge = f"{TEST_BRIDGES}-int"
    plain = docker_client.containers.run(
        env_image, ["sleep", "60"], entrypoint=[], detach=True, network=network,
        name=f"smtest-plain-{uuid.uuid4().hex[:8]}", labels={LABEL_INSTANCE: TEST_INSTANCE},
    )  # fmt: skip
    try:
        plain.reload()
        plain_address = plain.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        session = sessions.start(SERVE, interactive=True)
        handle_address, _port = session.target(timeout=20)  # the engine's record: no packet sent
        # Nothing on the host has sent the session anything: the entry is the runner's doing.
        learned = wait_neighbour(handle_address, bridge, timeout=20)
        assert learned, f"the host never learned {handle_address} on {bridge}"
        container = docker_client.containers.get(session.handle.state["container_id"])
        assert learned == container.attrs["NetworkSettings"]["Networks"][network]["MacAddress"]
        # The plain container, started before it on the same bridge, stays unknown.
        assert neighbour(plain_address, bridge) is None
    finally:
        plain.remove(force=True)
