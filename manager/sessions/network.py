"""Session networks: what a session container can reach (nothing but the manager's requests).

The manager runs on the host and reaches interactive sessions over a Docker bridge; no port is
published. Two shared networks are created on demand:

* ``<prefix>-internal`` (bridge ``smsess-int`` by default): ``internal=True``, so no route out;
* ``<prefix>-egress`` (bridge ``smsess-egr``): routed out, for groups allowed egress.

Both turn inter-container traffic off (``enable_icc=false``), so sessions cannot reach each
other. Docker leaves one hole: a container can open connections to the host itself through the
bridge's gateway address (a database listening on 0.0.0.0, Redis, the manager's own port). A rule
in the host's INPUT chain drops every new connection arriving from the bridges; connections the
host opens to a session still work, as their replies are ESTABLISHED. Without root or iptables the
rule cannot be set: isolation is then "partial", which ``ping()`` reports and the log shouts.

The egress network routes out, but not to private, link-local (cloud metadata) or CGNAT
addresses: ``manager.sessions.egress`` rejects those in ``DOCKER-USER`` unless the admin's
allow-list (``SM_EGRESS_ALLOW``) names them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from manager.sessions import egress
from manager.sessions.backend import LABEL_MANAGED, BackendError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "sm-sessions"
DEFAULT_BRIDGE_PREFIX = "smsess"
RULE_COMMENT = "scriptsmanager"
LABEL_NETWORK = "io.scriptsmanager.network"
POLICY_SUFFIXES = {"internal": ("internal", "int"), "egress": ("egress", "egr")}
_BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # Linux IFNAMSIZ - 1
_lock = threading.Lock()  # -C then -I is not atomic: one thread at a time


def default_bridge_prefix(prefix: str) -> str:
    """``smsess`` for the default prefix; else one derived from ``prefix``.

    Bridge names are global on the host: two installations with different prefixes must not
    share (or fight over) one bridge.
    """
    if prefix == DEFAULT_PREFIX:
        return DEFAULT_BRIDGE_PREFIX
    return "sm" + hashlib.sha256(prefix.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class SessionNetworks:
    """Names of the session networks and their bridges for one ``prefix``/``bridge_prefix``."""

    prefix: str = DEFAULT_PREFIX
    bridge_prefix: str = ""  # "": derived from prefix (see default_bridge_prefix)

    def __post_init__(self) -> None:
        if not self.bridge_prefix:
            object.__setattr__(self, "bridge_prefix", default_bridge_prefix(self.prefix))
        for policy in POLICY_SUFFIXES:
            if not _BRIDGE_RE.match(self.bridge(policy)):
                raise ValueError(
                    f"bridge_prefix: {self.bridge_prefix!r} makes the bridge name"
                    f" {self.bridge(policy)!r}, longer than 15 characters or invalid"
                )

    def network(self, policy: str) -> str:
        """Docker network name of ``policy`` ("internal" or "egress")."""
        return f"{self.prefix}-{POLICY_SUFFIXES[policy][0]}"

    def bridge(self, policy: str) -> str:
        """Host bridge interface name of ``policy``."""
        return f"{self.bridge_prefix}-{POLICY_SUFFIXES[policy][1]}"

    def options(self, policy: str) -> dict[str, str]:
        return {
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.name": self.bridge(policy),
        }


@dataclass
class NetworkStatus:
    """What ``ensure_networks`` set up: the network of each policy and the isolation achieved."""

    networks: dict[str, str]  # policy -> Docker network name
    isolation: str  # "full" | "partial"
    warnings: list[str] = field(default_factory=list)


def _find(client: Any, name: str) -> Any | None:
    """The network called exactly ``name`` (Docker's name filter matches substrings)."""
    for network in client.networks.list(names=[name]):
        if network.name == name:
            return network
    return None


def _check_existing(network: Any, names: SessionNetworks, policy: str) -> None:
    """Refuse a network of our name made with other settings: it would not isolate."""
    attrs = network.attrs
    options = attrs.get("Options") or {}
    wanted = names.options(policy)
    wrong = [key for key, value in wanted.items() if options.get(key) != value]
    if bool(attrs.get("Internal")) != (policy == "internal"):
        wrong.append("internal")
    if wrong:
        raise BackendError(
            "Session networking is misconfigured; an admin must fix it.",
            detail=f"network {network.name} exists with other settings ({', '.join(wrong)});"
            f" remove it with `docker network rm {network.name}` and the manager recreates it",
        )


def _ensure_network(client: Any, names: SessionNetworks, policy: str) -> str:
    name = names.network(policy)
    network = _find(client, name)
    if network is None:
        try:
            client.networks.create(
                name,
                driver="bridge",
                internal=policy == "internal",
                options=names.options(policy),
                labels={LABEL_MANAGED: "true", LABEL_NETWORK: policy},
                check_duplicate=True,
            )
            log.info("created session network %s (bridge %s)", name, names.bridge(policy))
        except docker.errors.APIError as exc:
            network = _find(client, name)  # another process may have won the race
            if network is None:
                raise BackendError(
                    "Session networking could not be set up.", detail=str(exc)
                ) from exc
    if network is not None:
        _check_existing(network, names, policy)
    return name


def ensure_networks(
    client: Any,
    prefix: str = DEFAULT_PREFIX,
    bridge_prefix: str | None = None,
    egress_allow: Sequence[str] = (),
) -> NetworkStatus:
    """Create the session networks when missing and make sure the host firewall rules are in place.

    ``egress_allow``: CIDRs the egress network may reach although private (SM_EGRESS_ALLOW).
    Idempotent; cheap when everything exists. Raises BackendError when a network cannot be
    created or exists with settings that would not isolate; ConfigError for a bad allow-list.
    """
    allow = egress.parse_allow_list(egress_allow)
    names = SessionNetworks(prefix, bridge_prefix or "")
    networks = {policy: _ensure_network(client, names, policy) for policy in POLICY_SUFFIXES}
    bridges = [names.bridge(policy) for policy in POLICY_SUFFIXES]
    warnings = block_host_access(bridges)
    if not warnings:  # root and iptables are there
        rules = egress.EgressRules(names.bridge("egress"), allow, egress.host_nameservers())
        with _lock:
            warnings += egress.apply(rules, _tools())
    isolation = "partial" if warnings else "full"
    for warning in warnings:
        log.warning("SESSION ISOLATION IS PARTIAL: %s", warning)
    return NetworkStatus(networks=networks, isolation=isolation, warnings=warnings)


def remove_networks(
    client: Any, prefix: str = DEFAULT_PREFIX, bridge_prefix: str | None = None
) -> None:
    """Remove the session networks of ``prefix`` and their firewall rules (for tests, uninstall).

    Containers still attached are disconnected first.
    """
    names = SessionNetworks(prefix, bridge_prefix or "")
    for policy in POLICY_SUFFIXES:
        network = _find(client, names.network(policy))
        if network is None:
            continue
        network.reload()
        for container_id in (network.attrs.get("Containers") or {}).copy():
            with contextlib.suppress(docker.errors.NotFound):  # gone meanwhile
                network.disconnect(container_id, force=True)
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    unblock_host_access([names.bridge(policy) for policy in POLICY_SUFFIXES])
    if os.geteuid() == 0:
        with _lock:
            egress.remove(names.bridge("egress"), _tools())


# --------------------------------------------------------------------------- host firewall


def _rule(bridge: str) -> list[str]:
    # NEW and INVALID: a stray packet that is not part of a host-initiated connection has no
    # business reaching the host either.
    return ["INPUT", "-i", bridge, "-m", "conntrack", "--ctstate", "NEW,INVALID",
            "-m", "comment", "--comment", RULE_COMMENT, "-j", "DROP"]  # fmt: skip


def _iptables(binary: str, action: str, rule: list[str]) -> subprocess.CompletedProcess[str]:
    # -w: wait for the xtables lock rather than fail when Docker is editing rules too.
    return subprocess.run(
        [binary, "-w", "-t", "filter", action, *rule],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _tools() -> list[str]:
    return [tool for tool in ("iptables", "ip6tables") if shutil.which(tool)]


def block_host_access(bridges: list[str]) -> list[str]:
    """Insert the INPUT drop rule for each bridge (IPv4 and IPv6) unless present.

    Returns warnings; empty when the host is protected. IPv6 failures are logged but do not make
    isolation partial: the session networks have no IPv6 (Docker disables it in the container).
    """
    exposed = "sessions can connect to services on the host (databases, Redis, the manager)"
    if os.geteuid() != 0:
        return [f"the manager is not root, so it cannot add the firewall rule: {exposed}"]
    tools = _tools()
    if "iptables" not in tools:
        return [f"iptables is not installed (apt-get install iptables): {exposed}"]
    warnings: list[str] = []
    with _lock:
        for tool in tools:
            for bridge in bridges:
                rule = _rule(bridge)
                if _iptables(tool, "-C", rule).returncode == 0:
                    continue
                done = _iptables(tool, "-I", rule)
                if done.returncode == 0:
                    log.info("%s: dropping new connections from %s to the host", tool, bridge)
                    continue
                problem = f"{tool} could not add the rule for {bridge}: {done.stderr.strip()}"
                if tool == "iptables":
                    warnings.append(problem)
                else:
                    log.warning("%s", problem)
    return warnings


def unblock_host_access(bridges: list[str]) -> None:
    """Delete every copy of the drop rule for each bridge; quiet when there is none."""
    if os.geteuid() != 0:
        return
    with _lock:
        for tool in _tools():
            for bridge in bridges:
                rule = _rule(bridge)
                while _iptables(tool, "-C", rule).returncode == 0:
                    if _iptables(tool, "-D", rule).returncode != 0:
                        break


def host_access_blocked(bridges: list[str]) -> bool:
    """True when the IPv4 drop rule is in place for every bridge."""
    if os.geteuid() != 0 or "iptables" not in _tools():
        return False
    return all(_iptables("iptables", "-C", _rule(bridge)).returncode == 0 for bridge in bridges)
