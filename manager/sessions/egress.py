"""The egress firewall: sessions allowed out reach the internet, never private or local addresses.

Docker routes a container on the egress network anywhere the host can reach: the cloud metadata
service (169.254.169.254), the office LAN, the database subnet. A chain of our own, jumped to from
``DOCKER-USER`` (Docker's hook for admin rules, evaluated before its own) for packets coming in
from the egress bridge, rejects every destination in the private, link-local, CGNAT and reserved
ranges below. Before the rejects come, in order:

* the admin's allow-list (``SM_EGRESS_ALLOW``, comma-separated CIDRs): returned to Docker's rules;
* DNS (port 53) to the host's own nameservers when they sit in a blocked range, because Docker's
  embedded DNS server forwards a container's queries from inside the container's network.

The rules are rebuilt only when what they should say changes: the jump carries a digest of the
wanted rules in its comment. Connections to the host itself are the INPUT rule's business
(``network.block_host_access``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from manager.settings import ConfigError

log = logging.getLogger(__name__)

RULE_COMMENT = "scriptsmanager"
CHAIN_PREFIX = "SMEGRESS-"  # + bridge name (<= 15): within iptables' 28-character chain names

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Everything a session must not reach unless an admin allows it: RFC 1918, CGNAT (RFC 6598),
# link-local (cloud metadata), loopback, "this network", IETF protocol assignments, benchmarking,
# documentation, multicast and reserved; for IPv6 unique-local, link-local, site-local, mapped
# IPv4, NAT64 (it would map onto the IPv4 ranges above), documentation and multicast.
BLOCKED_V4: tuple[str, ...] = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
BLOCKED_V6: tuple[str, ...] = (
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
)
TOOLS = {4: "iptables", 6: "ip6tables"}
REJECT_WITH = {4: "icmp-admin-prohibited", 6: "icmp6-adm-prohibited"}


def parse_allow_list(entries: Iterable[str]) -> tuple[Network, ...]:
    """The admin's allow-list as networks; raises ConfigError naming the entry that is wrong."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"SM_EGRESS_ALLOW: {entry!r} is not an address range"
                " (write CIDRs such as 10.20.0.0/16 or 192.168.1.5, separated by commas)"
            ) from exc
    return tuple(networks)


def host_nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> tuple[str, ...]:
    """The nameserver addresses of the host's resolv.conf (Docker hands these to containers)."""
    try:
        text = resolv_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                found.append(str(ipaddress.ip_address(parts[1].split("%")[0])))
            except ValueError:
                continue
    return tuple(found)


def chain_name(bridge: str) -> str:
    return CHAIN_PREFIX + bridge


@dataclass(frozen=True)
class EgressRules:
    """What the egress chain of one bridge says, per IP version (a pure builder, no iptables)."""

    bridge: str
    allow: tuple[Network, ...] = ()
    nameservers: tuple[str, ...] = ()

    def blocked(self, version: int) -> list[Network]:
        ranges = BLOCKED_V4 if version == 4 else BLOCKED_V6
        return [ipaddress.ip_network(cidr) for cidr in ranges]

    def chain_rules(self, version: int) -> list[list[str]]:
        """The chain's rules (arguments after ``-A <chain>``), in order."""
        chain = chain_name(self.bridge)
        blocked = self.blocked(version)
        rules = [
            [chain, "-d", str(network), "-j", "RETURN"]
            for network in self.allow
            if network.version == version
        ]
        for server in self.nameservers:
            address = ipaddress.ip_address(server)
            if address.version != version or not any(address in net for net in blocked):
                continue
            for protocol in ("udp", "tcp"):
                rules.append([chain, "-d", f"{server}/{address.max_prefixlen}", "-p", protocol,
                              "-m", protocol, "--dport", "53", "-j", "RETURN"])  # fmt: skip
        rules += [
            [chain, "-d", str(network), "-j", "REJECT", "--reject-with", REJECT_WITH[version]]
            for network in blocked
        ]
        return rules

    def digest(self, version: int) -> str:
        return hashlib.sha256(repr(self.chain_rules(version)).encode()).hexdigest()[:12]

    def comment(self, version: int) -> str:
        return f"{RULE_COMMENT} egress {self.digest(version)}"

    def jump(self, version: int) -> list[str]:
        """The rule (after ``-I <hook>``) sending the bridge's outgoing packets to the chain."""
        return ["-i", self.bridge, "-m", "comment", "--comment", self.comment(version),
                "-j", chain_name(self.bridge)]  # fmt: skip


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    # -w: wait for the xtables lock rather than fail when Docker is editing rules too.
    return subprocess.run(
        [tool, "-w", "-t", "filter", *args], capture_output=True, text=True, timeout=30, check=False
    )


def _hook(tool: str) -> str:
    """DOCKER-USER when Docker manages this family's firewall, else FORWARD itself."""
    return "DOCKER-USER" if _run(tool, "-S", "DOCKER-USER").returncode == 0 else "FORWARD"


def _jumps(tool: str, hook: str, bridge: str) -> list[list[str]]:
    """Our jump rules for ``bridge`` in ``hook`` (as ``-A hook ...`` argument lists)."""
    listed = _run(tool, "-S", hook)
    target = chain_name(bridge)
    found = []
    for line in listed.stdout.splitlines():
        args = shlex.split(line)
        if args[:1] == ["-A"] and args[-2:] == ["-j", target]:
            found.append(args)
    return found


def _chain_length(tool: str, chain: str) -> int | None:
    listed = _run(tool, "-S", chain)
    if listed.returncode != 0:
        return None
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("-A "))


def apply(rules: EgressRules, tools: Sequence[str]) -> list[str]:
    """Make the firewall say ``rules`` for each available tool; returns problems (IPv4 only).

    IPv6 problems are logged, not returned: the session networks carry no IPv6.
    """
    problems: list[str] = []
    for version, tool in TOOLS.items():
        if tool not in tools:
            continue
        problem = _apply_one(rules, version, tool)
        if problem and version == 4:
            problems.append(problem)
        elif problem:
            log.warning("%s", problem)
    return problems


def _apply_one(rules: EgressRules, version: int, tool: str) -> str | None:
    chain = chain_name(rules.bridge)
    hook = _hook(tool)
    wanted = rules.chain_rules(version)
    current = _jumps(tool, hook, rules.bridge)
    jump = rules.jump(version)
    if [args[2:] for args in current] == [jump] and _chain_length(tool, chain) == len(wanted):
        return None  # in place and unchanged
    if _chain_length(tool, chain) is None:
        done = _run(tool, "-N", chain)
        if done.returncode != 0:
            return f"{tool} could not create the chain {chain}: {done.stderr.strip()}"
    _run(tool, "-F", chain)
    for rule in wanted:
        done = _run(tool, "-A", *rule)
        if done.returncode != 0:
            return f"{tool} could not add an egress rule for {rules.bridge}: {done.stderr.strip()}"
    done = _run(tool, "-I", hook, "1", *jump)
    if done.returncode != 0:
        return f"{tool} could not hook the egress rules of {rules.bridge}: {done.stderr.strip()}"
    for args in current:  # the previous version's jump, if any
        _run(tool, "-D", *args[1:])
    log.info("%s: egress from %s limited to public addresses (%d rules)", tool, rules.bridge,
             len(wanted))  # fmt: skip
    return None


def remove(bridge: str, tools: Sequence[str]) -> None:
    """Delete the jumps and the chain of ``bridge``; quiet when there are none."""
    chain = chain_name(bridge)
    for tool in tools:
        for hook in ("DOCKER-USER", "FORWARD"):
            for args in _jumps(tool, hook, bridge):
                _run(tool, "-D", *args[1:])
        if _chain_length(tool, chain) is not None:
            _run(tool, "-F", chain)
            _run(tool, "-X", chain)
