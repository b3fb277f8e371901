"""Session networking: names, the networks and firewall rule on the real engine, and isolation.

Every server these tests connect to is one they start on this machine: a TCP server on the host,
a session, a container on another test network. No public or outside address is ever used.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from manager.sessions import egress, network
from manager.sessions.backend import LABEL_INSTANCE, BackendError
from manager.sessions.docker import DockerBackend
from manager.sessions.network import (
    RULE_COMMENT,
    SessionNetworks,
    ensure_networks,
    host_access_blocked,
    remove_networks,
)
from manager.settings import ConfigError, load_settings
from tests.conftest import missing
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
    # Dropped by Docker, or rejected by the egress firewall (session subnets are private).
    assert results["internal"][f"{host}:{port}"] in {"TimeoutError", "ConnectionRefusedError"}
    assert results["egress"][f"{host}:{port}"] in {"TimeoutError", "OSError"}, results


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


# --------------------------------------------------------------------------- egress firewall
# Private destinations are addresses this test creates: a network namespace of its own behind a
# veth pair, with one small subnet in each range (RFC 1918, CGNAT, link-local). No packet ever
# leaves the machine; ranges the test cannot create are checked in `iptables -S` instead.

NAMESPACE_PORT = 8765
NAMESPACE_SERVER = """
import socket, sys
server = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    conn, peer = server.accept()
    print(peer[0], flush=True)
    conn.close()
"""


def test_egress_rules_block_private_ranges_and_honour_the_allow_list() -> None:
    allow = egress.parse_allow_list(["10.20.0.0/16", "192.168.7.9", "fd00:1::/64"])
    rules = egress.EgressRules("smx-egr", allow, ("10.255.255.53", "8.8.8.8", "::1"))
    v4 = [" ".join(rule) for rule in rules.chain_rules(4)]
    assert v4[0] == "SMEGRESS-smx-egr -d 10.20.0.0/16 -j RETURN"
    assert v4[1] == "SMEGRESS-smx-egr -d 192.168.7.9/32 -j RETURN"
    # DNS to the host's private nameserver only (Docker's DNS forwards from the container).
    assert v4[2:4] == [
        f"SMEGRESS-smx-egr -d 10.255.255.53/32 -p {p} -m {p} --dport 53 -j RETURN"
        for p in ("udp", "tcp")
    ]
    assert not [rule for rule in v4 if "8.8.8.8" in rule]
    rejected = {rule.split()[2] for rule in v4 if "REJECT" in rule}
    for cidr in ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                 "100.64.0.0/10", "127.0.0.0/8"):  # fmt: skip
        assert cidr in rejected
    public = [ipaddress.ip_address(a) for a in ("1.1.1.1", "8.8.8.8", "151.101.1.69")]
    assert not [a for a in public for net in rules.blocked(4) if a in net]
    v6 = [" ".join(rule) for rule in rules.chain_rules(6)]
    assert v6[0] == "SMEGRESS-smx-egr -d fd00:1::/64 -j RETURN"
    assert {"fc00::/7", "fe80::/10", "::ffff:0:0/96"} <= {rule.split()[2] for rule in v6}
    assert rules.digest(4) != egress.EgressRules("smx-egr").digest(4)


@pytest.mark.parametrize("entry", ["nope", "10.0.0.0/33", "10.0.0.0/8; 1.2.3.4"])
def test_a_wrong_allow_list_entry_is_refused_by_name(entry: str) -> None:
    with pytest.raises(ConfigError, match="SM_EGRESS_ALLOW: .* is not an address range"):
        DockerBackend(egress_allow=[entry])
    assert load_settings({"SM_EGRESS_ALLOW": "10.1.0.0/16, 192.168.5.0/24"})["SM_EGRESS_ALLOW"] == [
        "10.1.0.0/16",
        "192.168.5.0/24",
    ]


def test_host_nameservers_are_read_from_resolv_conf(tmp_path: Any) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# x\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\nnameserver bad\n")
    assert egress.host_nameservers(conf) == ("10.255.255.53", "fe80::1")
    assert egress.host_nameservers(tmp_path / "missing") == ()


def _chain(tool: str, bridge: str) -> list[str]:
    out = subprocess.run([tool, "-w", "-S", egress.chain_name(bridge)], capture_output=True,
                         text=True, check=False)  # fmt: skip
    return out.stdout.splitlines()


def _jump_rules(tool: str, bridge: str) -> list[str]:
    out = subprocess.run([tool, "-w", "-S"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines()
            if line.endswith(f"-j {egress.chain_name(bridge)}")]  # fmt: skip


@pytest.mark.docker
def test_egress_firewall_rules_in_iptables(docker_client: Any) -> None:
    prefix, bridges = f"{TEST_PREFIX}-e", f"sme{RUN_ID}"
    bridge = f"{bridges}-egr"
    try:
        ensure_networks(docker_client, prefix, bridges)
        ensure_networks(docker_client, prefix, bridges)
        [jump] = _jump_rules("iptables", bridge)
        assert jump.startswith(f"-A DOCKER-USER -i {bridge} ")
        rules = _chain("iptables", bridge)
        for cidr in ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                     "100.64.0.0/10"):  # fmt: skip
            reject = "-j REJECT --reject-with icmp-admin-prohibited"
            assert f"-A SMEGRESS-{bridge} -d {cidr} {reject}" in rules
        v6 = _chain("ip6tables", bridge)
        for cidr in ("fc00::/7", "fe80::/10", "::ffff:0.0.0.0/96"):
            assert any(f"-d {cidr} -j REJECT" in rule for rule in v6), v6
        assert len(_jump_rules("ip6tables", bridge)) == 1
        # The allow-list comes first; changing it replaces the rules, never doubles the jump.
        ensure_networks(docker_client, prefix, bridges, ["10.99.0.0/16"])
        [new_jump] = _jump_rules("iptables", bridge)
        assert new_jump != jump
        rules = _chain("iptables", bridge)
        assert rules[1] == f"-A SMEGRESS-{bridge} -d 10.99.0.0/16 -j RETURN"
        internal = f"{bridges}-int"
        assert not _jump_rules("iptables", internal)  # the internal network has no route out
    finally:
        remove_networks(docker_client, prefix, bridges)
    assert not _jump_rules("iptables", bridge) and not _chain("iptables", bridge)
    assert not _jump_rules("ip6tables", bridge) and not _chain("ip6tables", bridge)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _free_octet(prefixes: list[str]) -> int:
    """A third octet whose /30 in each prefix is not on this host yet."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for octet in [int(RUN_ID, 16) % 200 + 20, *range(20, 220)]:
        if not any(f"{prefix}.{octet}." in routes for prefix in prefixes):
            return octet
    pytest.fail("no free test subnet")


@pytest.fixture
def private_servers() -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """A TCP server in a network namespace of this test, reachable on one address per range.

    Yields ({range name: address}, server process); the server prints each peer's address.
    """
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        missing("docker", "ip netns is not available")
    prefixes = {"rfc1918-10": "10.213", "rfc1918-192": "192.168", "cgnat": "100.64",
                "link-local": "169.254"}  # fmt: skip
    octet = _free_octet(list(prefixes.values()))
    namespace, host_end, ns_end = f"smtest-{RUN_ID}", f"smv{RUN_ID}h", f"smv{RUN_ID}n"
    server = None
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", namespace)
        addresses = {}
        for name, prefix in prefixes.items():
            _ip("addr", "add", f"{prefix}.{octet}.1/30", "dev", host_end)
            _ip("-n", namespace, "addr", "add", f"{prefix}.{octet}.2/30", "dev", ns_end)
            addresses[name] = f"{prefix}.{octet}.2"
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace, "link", "set", ns_end, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        server = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", NAMESPACE_SERVER,
             str(NAMESPACE_PORT)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield addresses, server
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def _peers(server: subprocess.Popen[str]) -> list[str]:
    server.kill()
    out, _ = server.communicate()
    return out.split()


@pytest.mark.docker
def test_an_egress_session_cannot_reach_private_addresses(
    sessions: SessionFactory, private_servers: tuple[dict[str, str], subprocess.Popen[str]]
) -> None:
    addresses, server = private_servers
    for address in addresses.values():  # the servers are there: the host itself connects
        socket.create_connection((address, NAMESPACE_PORT), timeout=2).close()
    targets = [(address, NAMESPACE_PORT) for address in addresses.values()]
    [result] = _probe(sessions, targets, egress={"network": "egress"}).values()
    assert "connected" not in result.values(), result
    assert len(_peers(server)) == len(addresses), "a session got through"


@pytest.mark.docker
def test_the_allow_list_opens_only_its_ranges(
    docker_client: Any,
    env_image: str,
    tmp_path: Any,
    private_servers: tuple[dict[str, str], subprocess.Popen[str]],
) -> None:
    addresses, server = private_servers
    allowed = addresses["rfc1918-10"]
    backend = DockerBackend(docker_client, instance=TEST_INSTANCE, network_prefix=TEST_PREFIX,
                            bridge_prefix=TEST_BRIDGES, egress_allow=[f"{allowed}/30"])  # fmt: skip
    factory = SessionFactory(backend, env_image, tmp_path)
    try:
        targets = [(address, NAMESPACE_PORT) for address in addresses.values()]
        [result] = _probe(factory, targets, egress={"network": "egress"}).values()
    finally:
        for session in factory.started:
            backend.remove(session.handle)
        ensure_networks(docker_client, TEST_PREFIX, TEST_BRIDGES)  # back to no allow-list
    assert result.pop(f"{allowed}:{NAMESPACE_PORT}") == "connected"
    assert "connected" not in result.values(), result
    assert len(_peers(server)) == 1
