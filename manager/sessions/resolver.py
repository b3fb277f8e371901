"""The proxy's view of sessions: which container serves a URL, and who may reach it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select

from manager.models import Execution, ScriptProcess
from manager.proxy.resolver import ProxyDenied, ProxyTarget, ProxyUnavailable
from manager.sessions.backend import SessionBackend
from manager.sessions.monitor import Activity, health_ok

ENDED = 502
ENDED_MESSAGE = "This session has ended. Start it again from its group page."
READY_FIRST_PAUSE = 0.002  # seconds between the first two health checks of a starting session
# At most this long between two checks: a page waits half of it on average once the runner
# serves (bench/sessions/probe_start.py); a refused check costs the manager well under 1 ms.
READY_MAX_PAUSE = 0.01


def ready_pauses() -> Iterator[float]:
    """The pauses between a starting session's health checks: 2 ms, doubling up to 10 ms."""
    pause = READY_FIRST_PAUSE
    while True:
        yield pause
        pause = min(pause * 2, READY_MAX_PAUSE)


class SessionResolver:
    """Implements ``manager.proxy.resolver.Resolver`` over the database's live sessions.

    A request for a session that is still starting waits (up to ``start_wait`` seconds) for its
    web server instead of bouncing off a 503 page: the first page arrives as soon as it can.
    """

    def __init__(
        self,
        app: Any,
        activity: Activity,
        admin_inspect: bool,
        backend: SessionBackend | None = None,
        start_wait: float = 5.0,
        health_check: Callable[[str, int], bool] = health_ok,
    ):
        self.app = app
        self.activity = activity
        self.admin_inspect = admin_inspect
        self.backend = backend
        self.start_wait = start_wait
        self.health_check = health_check

    def resolve(
        self, *, user_id: int, is_admin: bool, project_id: int, script_id: int, url_user_id: int
    ) -> ProxyTarget:
        process, execution_uuid = self._latest(
            user_id, is_admin, project_id, script_id, url_user_id
        )
        if process.status == "starting":
            return self._await_ready(process, execution_uuid)
        address = (process.backend_state or {}).get("address")
        if process.status not in ("running", "stopping") or not address:
            raise ProxyUnavailable(ENDED, ENDED_MESSAGE)
        return ProxyTarget(host=str(address[0]), port=int(address[1]), session_key=execution_uuid)

    def session_key(
        self, *, user_id: int, is_admin: bool, project_id: int, script_id: int, url_user_id: int
    ) -> str:
        process, execution_uuid = self._latest(
            user_id, is_admin, project_id, script_id, url_user_id
        )
        if process.status not in ("starting", "running"):
            raise ProxyUnavailable(ENDED, ENDED_MESSAGE)
        return str(execution_uuid)

    def _latest(
        self, user_id: int, is_admin: bool, project_id: int, script_id: int, url_user_id: int
    ) -> tuple[ScriptProcess, str]:
        """The newest interactive session behind the URL's ids, if the caller may reach it."""
        if url_user_id != user_id and not (is_admin and self.admin_inspect):
            raise ProxyDenied(403, "This session belongs to another user.")
        from manager.extensions import db

        with self.app.app_context():
            try:
                row = db.session.execute(
                    select(ScriptProcess, Execution.execution_uuid)
                    .join(Execution, Execution.id == ScriptProcess.execution_id)
                    .where(
                        ScriptProcess.user_id == url_user_id,
                        ScriptProcess.script_id == script_id,
                        ScriptProcess.project_id == project_id,
                        ScriptProcess.interactive.is_(True),
                    )
                    .order_by(ScriptProcess.id.desc())
                ).first()
            finally:
                db.session.remove()
        if row is None:
            raise ProxyDenied(
                404,
                "There is no session of this script in this project. Start it from its group page.",
            )
        process, execution_uuid = row
        return process, execution_uuid

    def _await_ready(self, process: ScriptProcess, execution_uuid: str) -> ProxyTarget:
        """Wait for a starting session's health check; 503 when it takes longer.

        Checks again after 2 ms, then twice as long each time up to 10 ms (``ready_pauses``):
        a warm-pool session is up within tens of milliseconds, a fixed 20 ms step lost half of
        one.
        """
        if self.backend is None or not process.backend_state:
            raise ProxyUnavailable(503, "The session is starting.", retry_after=1)
        handle = self.backend.load_state(execution_uuid, process.backend_state)
        deadline = time.monotonic() + self.start_wait
        target = None
        pauses = ready_pauses()
        while time.monotonic() < deadline:
            target = target or self.backend.address(handle)
            if target is not None and self.health_check(target.host, target.port):
                # The monitor records "running" on its next pass; serve the page now.
                return ProxyTarget(host=target.host, port=target.port, session_key=execution_uuid)
            time.sleep(next(pauses))
        raise ProxyUnavailable(503, "The session is starting.", retry_after=1)

    def touch(self, session_key: str) -> None:
        self.activity.touch(session_key)
