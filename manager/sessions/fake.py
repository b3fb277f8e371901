"""``FakeBackend``: the session contract in memory, for unit tests of the lifecycle service.

A ``FakeScript`` says what a session does: its output, when it exits and how, how long its web
server takes to come up, whether starting it fails. A backend takes one ``FakeScript`` for every
session, or a callable choosing one per spec (a "script" written in Python). Tests drive time by
calling ``poll``/``address``: nothing sleeps, except ``logs(follow=True)``, which waits for output.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from manager.sessions.backend import (
    BackendError,
    ExitStatus,
    Handle,
    ImageMissing,
    LogLine,
    SessionBackend,
    SessionSpec,
    Target,
)

EXIT_TERMINATED = 143  # the runner's status after SIGTERM in a batch script
EXIT_KILLED = 137  # 128 + SIGKILL: stop(now=True), or the kernel's OOM killer
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FakeScript:
    """What one fake session does.

    ``exit_code`` None means it serves until stopped (interactive). ``output`` lines are
    ``"text"`` (stdout) or ``("stderr", "text")``.
    """

    output: tuple[str | tuple[str, str], ...] = ()
    exit_code: int | None = 0
    run_polls: int = 0  # polls answering None before the exit shows
    start_polls: int = 0  # address() calls answering None before the server is up
    oom: bool = False  # ends killed by the OOM killer instead of with exit_code
    start_error: str | None = None  # start() raises BackendError with this message
    target: Target | None = None  # where address() points; default <name>.fake:<port>
    memory_bytes: int = 50 * 1024 * 1024


Program = FakeScript | Callable[[SessionSpec], FakeScript]


@dataclass
class FakeSession:
    """One fake container; tests may inspect it through ``FakeBackend.sessions``."""

    spec: SessionSpec
    script: FakeScript
    container_id: str
    lines: list[LogLine] = field(default_factory=list)
    polls: int = 0
    address_calls: int = 0
    exit: ExitStatus | None = None
    stopped: str | None = None  # "graceful" | "now"
    removed: bool = False


class FakeBackend(SessionBackend):
    """Sessions in memory. Thread-safe; one instance plays the engine for a whole test."""

    def __init__(self, program: Program | None = None, *, missing_images: Iterable[str] = ()):
        self.program: Program = program if program is not None else FakeScript()
        self.missing_images = set(missing_images)
        self.sessions: dict[str, FakeSession] = {}  # by container name
        self.started: list[SessionSpec] = []
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self._changed = threading.Condition()

    # ------------------------------------------------------------------ test controls

    def _stamp(self) -> str:
        """A fresh, strictly increasing engine-like timestamp."""
        stamp = _EPOCH + timedelta(microseconds=next(self._clock))
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def session(self, handle_or_uuid: Handle | str) -> FakeSession:
        """The session of a handle or an execution uuid; KeyError when unknown."""
        uuid = getattr(handle_or_uuid, "execution_uuid", handle_or_uuid)
        for session in self.sessions.values():
            if session.spec.execution_uuid == uuid and not session.removed:
                return session
        raise KeyError(uuid)

    def emit(self, handle_or_uuid: Handle | str, text: str, stream: str = "stdout") -> None:
        """Add an output line to a running session."""
        with self._changed:
            session = self.session(handle_or_uuid)
            session.lines.append(LogLine(stream, text, self._stamp()))
            self._changed.notify_all()

    def finish(
        self, handle_or_uuid: Handle | str, exit_code: int | None = 0, *, oom: bool = False
    ) -> None:
        """End a session now, as if its script returned ``exit_code`` (or the OOM killer hit)."""
        with self._changed:
            session = self.session(handle_or_uuid)
            self._end(session, EXIT_KILLED if oom else exit_code, oom=oom)

    def lose(self, handle_or_uuid: Handle | str) -> None:
        """Make a session vanish, as if someone removed its container behind our back."""
        with self._changed:
            self.session(handle_or_uuid).removed = True
            self._changed.notify_all()

    def _end(self, session: FakeSession, exit_code: int | None, *, oom: bool = False) -> None:
        if session.exit is None:
            session.exit = ExitStatus(exit_code, oom_killed=oom)
            self._changed.notify_all()

    # ------------------------------------------------------------------ the contract

    def start(self, spec: SessionSpec) -> Handle:
        if spec.image in self.missing_images:
            raise ImageMissing(
                f"The image {spec.image} is not built; an admin can build it under"
                " Admin → Environments."
            )
        script = self.program(spec) if callable(self.program) else self.program
        if script.start_error:
            raise BackendError(script.start_error, detail="FakeScript.start_error")
        with self._changed:
            if spec.name in self.sessions and not self.sessions[spec.name].removed:
                raise BackendError("A session for this run already exists.")
            session = FakeSession(spec, script, f"fake-{next(self._ids)}")
            for item in script.output:
                stream, text = ("stdout", item) if isinstance(item, str) else item
                session.lines.append(LogLine(stream, text, self._stamp()))
            self.sessions[spec.name] = session
            self.started.append(spec)
        return Handle(spec.execution_uuid, self._state(session))

    @staticmethod
    def _state(session: FakeSession) -> dict[str, Any]:
        return {"container_id": session.container_id, "name": session.spec.name,
                "port": session.spec.port}  # fmt: skip

    def _find(self, handle: Handle) -> FakeSession | None:
        session = self.sessions.get(handle.state.get("name", ""))
        return None if session is None or session.removed else session

    def address(self, handle: Handle) -> Target | None:
        with self._changed:
            session = self._find(handle)
            if session is None or session.exit is not None:
                return None
            session.address_calls += 1
            if session.address_calls <= session.script.start_polls:
                return None
            return session.script.target or Target(f"{session.spec.name}.fake", session.spec.port)

    def poll(self, handle: Handle) -> ExitStatus | None:
        with self._changed:
            session = self._find(handle)
            if session is None:
                return ExitStatus(None, error="gone")
            script = session.script
            if session.exit is None and (script.exit_code is not None or script.oom):
                session.polls += 1
                if session.polls > script.run_polls:
                    code = EXIT_KILLED if script.oom else script.exit_code
                    self._end(session, code, oom=script.oom)
            return session.exit

    def stop(self, handle: Handle, *, now: bool = False, timeout: float = 10.0) -> None:
        with self._changed:
            session = self._find(handle)
            if session is None or session.exit is not None:
                return
            session.stopped = "now" if now else "graceful"
            # The runner answers SIGTERM with 0 when serving, 143 in the middle of a batch run.
            graceful = 0 if session.script.exit_code is None else EXIT_TERMINATED
            self._end(session, EXIT_KILLED if now else graceful)

    def remove(self, handle: Handle) -> None:
        with self._changed:
            session = self._find(handle)
            if session is not None:
                session.removed = True
                self._changed.notify_all()

    def logs(
        self, handle: Handle, *, since: str | None = None, follow: bool = False
    ) -> Iterator[LogLine]:
        seen = 0
        while True:
            with self._changed:
                session = self._find(handle)
                if session is None:
                    return
                fresh = session.lines[seen:]
                seen = len(session.lines)
                ended = session.exit is not None
                if not fresh and follow and not ended:
                    self._changed.wait(timeout=0.05)
                    continue
            # Fake stamps are fixed-width, so comparing them as strings is exact.
            yield from (line for line in fresh if since is None or (line.timestamp or "") > since)
            if not follow or ended:
                return

    def stats(self, handle: Handle) -> dict[str, Any]:
        session = self._find(handle)
        if session is None or session.exit is not None:
            return {}
        return {"memory_bytes": session.script.memory_bytes}

    def list_sessions(self) -> list[Handle]:
        return [
            Handle(session.spec.execution_uuid, self._state(session))
            for session in self.sessions.values()
            if not session.removed
        ]

    def ping(self) -> dict[str, Any]:
        return {"status": "ok", "version": "fake", "isolation": "full"}
