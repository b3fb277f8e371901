"""Session networking: names, the networks and firewall rule on the real engine, and isolation.

Every server these tests connect to is one they start on this machine: a TCP server on the host,
a session, a container on another test network. No public or outside address is ever used.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from manager.sessions import network
from manager.sessions.backend import LABEL_INSTANCE, BackendError
from manager.sessions.docker import DockerBackend
from manager.sessions.network import (
    RULE_COMMENT,
    SessionNetworks,
    ensure_networks,
    host_access_blocked,
    remove_networks,
)
from tests.sessions.session_support import (
    RUN_ID,
    TEST_BRIDGES,
    TEST_INSTANCE,
    TEST_PREFIX,
    SessionFactory,
)

# --------------------------------------------------------------------------- names


def test_default_names_and_bridges() -> None:
    names = SessionNetworks()
    assert names.network("internal") == "sm-sessions-internal"
    assert names.network("egress") == "sm-sessions-egress"
    assert names.bridge("internal") == "smsess-int"
    assert names.bridge("egress") == "smsess-egr"
    assert names.options("internal") == {
        "com.docker.network.bridge.enable_icc": "false",
        "com.docker.network.bridge.name": "smsess-int",
    }


def test_other_prefixes_get_their_own_bridges() -> None:
    mine, theirs = SessionNetworks("plant-a"), SessionNetworks("plant-b")
    assert mine.bridge_prefix != theirs.bridge_prefix
    assert mine.bridge_prefix.startswith("sm") and len(mine.bridge("internal")) <= 15
    assert mine == SessionNetworks("plant-a")


def test_bridge_names_must_fit_linux_interface_names() -> None:
    assert SessionNetworks("x", "abcdefghijk").bridge("egress") == "abcdefghijk-egr"
    with pytest.raises(ValueError, match="longer than 15"):
        SessionNetworks("x", "abcdefghijkl")


def test_without_root_or_iptables_isolation_is_partial_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real thing (a non-root manager, a host without iptables) cannot run here.
    monkeypatch.setattr(network.os, "geteuid", lambda: 1000)
    [warning] = network.block_host_access(["smx-int"])
    assert "not root" in warning and "databases" in warning
    monkeypatch.setattr(network.os, "geteuid", lambda: 0)
    monkeypatch.setattr(network.shutil, "which", lambda tool: None)
    [warning] = network.block_host_access(["smx-int"])
    assert "iptables is not installed" in warning


# --------------------------------------------------------------------------- on the engine


def _rules(tool: str = "iptables") -> list[str]:
    out = subprocess.run([tool, "-w", "-S", "INPUT"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if RULE_COMMENT in line]


@pytest.mark.docker
def test_ensure_networks_is_idempotent_and_remove_cleans_up(docker_client: Any) -> None:
    prefix, bridges = f"{TEST_PREFIX}-n", f"smn{RUN_ID}"
    try:
        first = ensure_networks(docker_client, prefix, bridges)
        again = ensure_networks(docker_client, prefix, bridges)
        assert (
            first.networks
            == again.networks
            == {
                "internal": f"{prefix}-internal",
                "egress": f"{prefix}-egress",
            }
        )
        assert first.isolation == "full", first.warnings
        internal = docker_client.networks.get(f"{prefix}-internal").attrs
        egress = docker_client.networks.get(f"{prefix}-egress").attrs
        assert internal["Internal"] is True and egress["Internal"] is False
        assert internal["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        assert egress["Options"]["com.docker.network.bridge.name"] == f"{bridges}-egr"
        ours = [rule for rule in _rules() if bridges in rule]
        assert len(ours) == 2  # one per bridge, not doubled by the second call
        for rule in ours:  # iptables lists the states in its own order
            assert "-m conntrack --ctstate INVALID,NEW" in rule and rule.endswith("-j DROP")
        assert host_access_blocked([f"{bridges}-int", f"{bridges}-egr"])
    finally:
        remove_networks(docker_client, prefix, bridges)
    assert not [rule for rule in _rules() if bridges in rule]
    assert not [n for n in docker_client.networks.list(names=[prefix]) if n.name.startswith(prefix)]


@pytest.mark.docker
def test_a_lookalike_network_without_isolation_is_refused(docker_client: Any) -> None:
    prefix, bridges = f"{TEST_PREFIX}-bad", f"smb{RUN_ID}"
    docker_client.networks.create(f"{prefix}-internal", driver="bridge")  # not internal, icc on
    try:
        with pytest.raises(BackendError) as caught:
            ensure_networks(docker_client, prefix, bridges)
        assert "docker network rm" in caught.value.detail
    finally:
        remove_networks(docker_client, prefix, bridges)


# --------------------------------------------------------------------------- isolation

CONNECT = """
import json, socket, threading
result = {}
def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=1.5).close()
        result[f"{host}:{port}"] = "connected"
    except OSError as exc:
        result[f"{host}:{port}"] = type(exc).__name__
threads = [threading.Thread(target=connect, args=target) for target in PARAMETERS["targets"]]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(result))
"""
SERVE = "app.add_url_rule('/', 'index', lambda: 'session A')\n"


@pytest.fixture
def host_server() -> Iterator[tuple[int, list[Any]]]:
    """A TCP server on the host's 0.0.0.0 (like a database would be); yields (port, peers)."""
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(0.2)
    peers: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            peers.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], peers
    stop.set()
    thread.join()
    server.close()


def _gateway(docker_client: Any, network: str) -> str:
    """The host's address on a Docker network (the default bridge does not list it: .1)."""
    config = docker_client.networks.get(network).attrs["IPAM"]["Config"][0]
    return config.get("Gateway") or str(ipaddress.ip_network(config["Subnet"])[1])


def _probe(
    sessions: SessionFactory, targets: list[tuple[str, int]], **variants: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """Run the connect script in one session per variant (at once); return each one's results."""
    started = {
        name: sessions.start(CONNECT, parameters={"targets": targets}, **options)
        for name, options in variants.items()
    }
    results = {}
    for name, session in started.items():
        assert session.wait().exit_code == 0, session.text("stderr")
        results[name] = json.loads(session.text())
    return results


def _wait_http(url: str) -> requests.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return requests.get(url, timeout=1)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.1)


@pytest.mark.docker
def test_a_session_cannot_reach_another_session(
    sessions: SessionFactory, backend: DockerBackend
) -> None:
    victim = sessions.start(SERVE, interactive=True)
    host, port = victim.target()
    assert _wait_http(f"http://{host}:{port}/").text == "session A"  # the manager can
    results = _probe(sessions, [(host, port)], internal={"network": "internal"},
                     egress={"network": "egress"})  # fmt: skip
    for result in results.values():
        assert result[f"{host}:{port}"] in {"TimeoutError", "ConnectionRefusedError"}, results


@pytest.mark.docker
def test_a_session_cannot_reach_a_server_on_the_host(
    sessions: SessionFactory,
    backend: DockerBackend,
    docker_client: Any,
    host_server: tuple[int, list[Any]],
) -> None:
    port, peers = host_server
    networks = backend.network_status().networks
    gateways = [_gateway(docker_client, name) for name in networks.values()]
    docker0 = _gateway(docker_client, "bridge")
    targets = [(gateway, port) for gateway in [*gateways, docker0]]
    with socket.create_connection((gateways[0], port), timeout=2):
        pass  # the server is there: the host itself connects
    time.sleep(0.3)
    assert len(peers) == 1
    results = _probe(
        sessions,
        targets,
        internal={"network": "internal"},
        egress={"network": "egress"},
        interactive={"interactive": True},  # network "none", on the internal network
    )
    for result in results.values():
        assert set(result.values()) <= {"TimeoutError", "OSError"}, results
    assert len(peers) == 1, f"a session got through: {peers}"


@pytest.mark.docker
def test_no_network_for_a_batch_run_without_egress(
    sessions: SessionFactory, backend: DockerBackend, host_server: tuple[int, list[Any]]
) -> None:
    port, peers = host_server
    script = "import socket\nprint(sorted(name for _, name in socket.if_nameindex()))\n" + CONNECT
    session = sessions.start(script, parameters={"targets": [["172.17.0.1", port]]})
    assert session.wait().exit_code == 0
    interfaces, result = session.text().splitlines()
    assert interfaces == "['lo']"
    assert json.loads(result) == {f"172.17.0.1:{port}": "OSError"}  # network unreachable
    assert backend.address(session.handle) is None
    assert peers == []


@pytest.fixture
def other_network_server(docker_client: Any, env_image: str) -> Iterator[str]:
    """An HTTP server container on a separate, ordinary test network; yields its IP address."""
    network = docker_client.networks.create(f"{TEST_PREFIX}-other", driver="bridge")
    container = docker_client.containers.run(
        env_image,
        entrypoint=["python", "-m", "http.server", "8000", "--directory", "/tmp"],
        user="10001:10001",
        read_only=True,
        network=network.name,
        labels={LABEL_INSTANCE: TEST_INSTANCE},
        detach=True,
    )
    try:
        container.reload()
        yield container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    finally:
        container.remove(force=True)
        network.remove()


@pytest.mark.docker
def test_the_internal_network_has_no_route_out(
    sessions: SessionFactory, other_network_server: str
) -> None:
    address = other_network_server
    assert _wait_http(f"http://{address}:8000/").status_code == 200  # the host reaches it
    results = _probe(sessions, [(address, 8000)], internal={"network": "internal"},
                     interactive={"interactive": True})  # fmt: skip
    # Unreachable or silently dropped, depending on the engine's version: never connected.
    for result in results.values():
        assert result[f"{address}:8000"] in {"OSError", "TimeoutError"}, results


@pytest.mark.docker
def test_ping_reports_full_isolation(backend: DockerBackend) -> None:
    status = backend.ping()
    assert status["isolation"] == "full"
    bridges = [f"{TEST_BRIDGES}-int", f"{TEST_BRIDGES}-egr"]
    assert host_access_blocked(bridges)
