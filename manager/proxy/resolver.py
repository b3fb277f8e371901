"""What the proxy asks the sessions service: where a session lives, and who may reach it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProxyTarget:
    """Where a running session's web server listens."""

    host: str
    port: int
    session_key: str  # the execution uuid


class ProxyDenied(Exception):
    """The user may not reach this session (403), or there is no such session (404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ProxyUnavailable(Exception):
    """The session exists but cannot serve now: 503 while it starts, 502 once it is gone."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Resolver(Protocol):
    """Decides which container serves a proxy URL; the app keeps one in
    ``app.extensions["sm_proxy_resolver"]``."""

    def resolve(
        self, *, user_id: int, is_admin: bool, project_id: int, script_id: int, url_user_id: int
    ) -> ProxyTarget:
        """Return the target of the session behind the URL's ids, for this logged-in user.

        The ids come from the URL and are not trusted: the user must own the session
        (``url_user_id == user_id``) unless ``is_admin``. Raises ProxyDenied or ProxyUnavailable.
        The proxy caches a successful answer for about a second.
        """
        ...

    def session_key(
        self, *, user_id: int, is_admin: bool, project_id: int, script_id: int, url_user_id: int
    ) -> str:
        """The execution uuid of the live (starting or running) session behind the URL's ids,
        with the same ownership rules as ``resolve``; raises ProxyDenied or ProxyUnavailable.
        Used to mint a ticket into the session's host, so it does not wait for a start."""
        ...

    def touch(self, session_key: str) -> None:
        """Record activity on a session (for its idle timeout); called often, keep it in memory."""
        ...


@dataclass(frozen=True)
class StaticSession:
    """One entry of a StaticResolver: a session at fixed ids, in a fixed state."""

    project_id: int
    script_id: int
    user_id: int
    target: ProxyTarget
    state: str = "running"  # running | starting | gone


class StaticResolver:
    """A resolver over a fixed list of sessions, for tests, benchmarks and development."""

    def __init__(self, sessions: Iterable[StaticSession] = ()) -> None:
        self.sessions = {(s.project_id, s.script_id, s.user_id): s for s in sessions}
        self.touched: dict[str, int] = {}

    def resolve(
        self, *, user_id: int, is_admin: bool, project_id: int, script_id: int, url_user_id: int
    ) -> ProxyTarget:
        if url_user_id != user_id and not is_admin:
            raise ProxyDenied(403, "This session belongs to another user.")
        session = self.sessions.get((project_id, script_id, url_user_id))
        if session is None:
            raise ProxyDenied(404, "There is no such session.")
        if session.state == "starting":
            raise ProxyUnavailable(503, "The session is starting.", retry_after=2)
        if session.state == "gone":
            raise ProxyUnavailable(502, "The session has ended.")
        return session.target

    def session_key(
        self, *, user_id: int, is_admin: bool, project_id: int, script_id: int, url_user_id: int
    ) -> str:
        if url_user_id != user_id and not is_admin:
            raise ProxyDenied(403, "This session belongs to another user.")
        session = self.sessions.get((project_id, script_id, url_user_id))
        if session is None:
            raise ProxyDenied(404, "There is no such session.")
        if session.state == "gone":
            raise ProxyUnavailable(502, "The session has ended.")
        return session.target.session_key

    def touch(self, session_key: str) -> None:
        self.touched[session_key] = self.touched.get(session_key, 0) + 1
