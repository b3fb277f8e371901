"""Session hosts: which host name serves which session, and where the manager lives.

A script's web interface is never served on the manager's origin: each session (user x script x
project) gets a host name of its own, ``p<project>-s<script>-u<user>.<session domain>``, on the
manager's port; the manager routes by ``Host``. Pure functions and a small router; no Flask.

Modes (``SM_SESSION_HOST_MODE``):
- ``per-session``: one host per session (the default);
- ``shared``: every session on one host apart from the manager (isolated from the manager, not
  from each other);
- ``manager``: the manager's own origin (unsafe: a script's page can act as its viewer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MODES = ("per-session", "shared", "manager")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
LOCAL_DOMAIN = "localhost"  # browsers resolve every *.localhost name to the loopback address
LABEL = re.compile(r"p(\d{1,12})-s(\d{1,12})-u(\d{1,12})\Z")
MAX_CACHED_HOSTS = 4096

Ids = tuple[int, int, int]  # (project, script, user) as in /project/<p>/script/<s>/user/<u>


class NoSessionDomain(Exception):
    """The manager is reached under a name for which no session domain is known."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"Script interfaces are served from host names of their own, and none is configured "
            f"for this address ({host}). An administrator must set SM_SESSION_DOMAIN (with a "
            f"wildcard DNS record) and SM_PUBLIC_URL, or open the manager as localhost."
        )
        self.host = host


@dataclass(frozen=True)
class SessionSite:
    """A request's host is a session host: ``ids`` of the one session it serves (None when
    shared)."""

    name: str  # host name, lowercase, without port
    ids: Ids | None


def split_host(host: str) -> tuple[str, str]:
    """``"A.localhost:5002"`` -> ``("a.localhost", ":5002")``; IPv6 literals keep brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            return host[: end + 1], host[end + 1 :]
        return host, ""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, ":" + port
    return host, ""


def label_for(ids: Ids) -> str:
    project_id, script_id, user_id = ids
    return f"p{project_id}-s{script_id}-u{user_id}"


def ids_of(label: str) -> Ids | None:
    match = LABEL.match(label)
    if match is None:
        return None
    project, script, user = (int(x) for x in match.groups())
    return project, script, user


def prefix_of(ids: Ids) -> str:
    project_id, script_id, user_id = ids
    return f"/project/{project_id}/script/{script_id}/user/{user_id}"


class HostRouter:
    """Tells session hosts from the manager's, and builds session and manager URLs."""

    def __init__(
        self,
        mode: str = "per-session",
        domain: str = "",
        shared_host: str = "",
        public_url: str = "",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"SM_SESSION_HOST_MODE must be one of {', '.join(MODES)}: {mode!r}")
        self.mode = mode
        self.domain = domain.strip().strip(".").lower()
        self.shared_host = shared_host.strip().lower()
        self.public_url = public_url.strip().rstrip("/")
        self._sites: dict[str, SessionSite | None] = {}

    @classmethod
    def from_config(cls, config: Any) -> HostRouter:
        return cls(
            mode=str(config.get("SM_SESSION_HOST_MODE") or "per-session"),
            domain=str(config.get("SM_SESSION_DOMAIN") or ""),
            shared_host=str(config.get("SM_SESSION_SHARED_HOST") or ""),
            public_url=str(config.get("SM_PUBLIC_URL") or ""),
        )

    @property
    def isolated(self) -> bool:
        return self.mode != "manager"

    def _domains(self) -> tuple[str, ...]:
        return (self.domain,) if self.domain else (LOCAL_DOMAIN,)

    def _shared_names(self) -> tuple[str, ...]:
        if self.shared_host:
            return (split_host(self.shared_host)[0],)
        return tuple(f"sessions.{domain}" for domain in self._domains())

    def site(self, host_header: str) -> SessionSite | None:
        """The session site a Host header names, or None for the manager's own host."""
        cached = self._sites.get(host_header, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        site = self._classify(host_header)
        if len(self._sites) >= MAX_CACHED_HOSTS:
            self._sites.clear()
        self._sites[host_header] = site
        return site

    def _classify(self, host_header: str) -> SessionSite | None:
        if self.mode == "manager" or not host_header:
            return None
        name, _ = split_host(host_header)
        if self.mode == "shared":
            return SessionSite(name, None) if name in self._shared_names() else None
        for domain in self._domains():
            if name.endswith("." + domain):
                ids = ids_of(name[: -len(domain) - 1])
                if ids is not None:
                    return SessionSite(name, ids)
        return None

    def session_domain(self, manager_host: str) -> str:
        """The domain session hosts live under, for a manager reached as ``manager_host``.

        Raises NoSessionDomain when none is configured and the name is not a loopback one.
        """
        if self.domain:
            return self.domain
        name, _ = split_host(manager_host)
        if name in LOOPBACK_NAMES or name == LOCAL_DOMAIN:
            return LOCAL_DOMAIN
        raise NoSessionDomain(manager_host)

    def session_origin(self, scheme: str, manager_host: str, ids: Ids) -> str:
        """``scheme://host[:port]`` of the session ``ids``, for a manager reached as
        ``manager_host`` (its port is kept unless the domain names one)."""
        if self.mode == "manager":
            return f"{scheme}://{manager_host}"
        _, port = split_host(manager_host)
        if self.mode == "shared":
            name = self.shared_host or f"sessions.{self.session_domain(manager_host)}"
        else:
            name = f"{label_for(ids)}.{self.session_domain(manager_host)}"
        if ":" in name.rsplit("]", 1)[-1]:
            return f"{scheme}://{name}"
        return f"{scheme}://{name}{port}"

    def session_url(self, scheme: str, manager_host: str, ids: Ids, path: str = "/") -> str:
        return self.session_origin(scheme, manager_host, ids) + prefix_of(ids) + path

    def manager_origin(self, scheme: str, session_host: str) -> str | None:
        """Where the manager is, seen from a session host: SM_PUBLIC_URL, or localhost."""
        if self.public_url:
            return self.public_url
        name, port = split_host(session_host)
        if self.domain and self.domain != LOCAL_DOMAIN:
            return None
        if name == LOCAL_DOMAIN or name.endswith("." + LOCAL_DOMAIN):
            return f"{scheme}://{LOCAL_DOMAIN}{port}"
        return None
