"""The session backend contract: start a container for a run, watch it, stop it, read its output.

Modelled on JupyterHub's Spawner. ``DockerBackend`` implements it for one host, a Kubernetes
backend later for the Helm deployment, and ``FakeBackend`` (in ``fake.py``) serves unit tests.
Backend state is a plain JSON-able dict stored on the execution row, so a restarted manager
re-adopts running sessions with ``load_state``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Labels on every session container (and network) the manager creates.
LABEL_MANAGED = "io.scriptsmanager.managed"
LABEL_EXECUTION = "io.scriptsmanager.execution"
LABEL_USER = "io.scriptsmanager.user"
LABEL_SCRIPT = "io.scriptsmanager.script"
LABEL_PROJECT = "io.scriptsmanager.project"
LABEL_INSTANCE = "io.scriptsmanager.instance"  # which manager installation owns it


class BackendError(RuntimeError):
    """The engine refused or failed; ``message`` is fit for the user, details go to the log."""

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


class ImageMissing(BackendError):
    """The session's image is not built (or is broken)."""


@dataclass(frozen=True)
class Mount:
    source: str  # host path
    target: str  # path in the container
    read_only: bool = True


@dataclass(frozen=True)
class SessionSpec:
    """Everything needed to start one session; built by ``spec.build_spec`` (a pure function)."""

    name: str  # container name, unique
    image: str
    execution_uuid: str
    labels: dict[str, str]
    mounts: tuple[Mount, ...]
    environment: dict[str, str]
    user: str = "10001:10001"
    memory: str = "512m"  # Docker notation: 512m, 1g
    cpus: float = 1.0
    pids: int = 128
    tmpfs_size: str = "64m"
    network: str = "none"  # none | internal | egress
    port: int = 8080  # where the runner serves routes inside the container
    log_max_size: str = "10m"
    command: tuple[str, ...] = ()
    run_timeout: int | None = None  # seconds; Kubernetes sets activeDeadlineSeconds from it


@dataclass(frozen=True)
class Target:
    """Where the manager reaches a session's web server."""

    host: str
    port: int


@dataclass(frozen=True)
class ExitStatus:
    """How a session ended."""

    exit_code: int | None
    oom_killed: bool = False
    error: str | None = None  # the engine's own error (e.g. failed to start)


@dataclass
class Handle:
    """A started session; ``state`` is what ``get_state`` stores and ``load_state`` reads."""

    execution_uuid: str
    state: dict[str, Any] = field(default_factory=dict)


class LogLine(NamedTuple):
    """One line of a session's output, or a note about it (``stream == "debug"``).

    A named tuple, not a dataclass: hundreds of thousands are made a second.
    """

    stream: str  # "stdout" | "stderr" | "debug" (a note from the capture: a gap, a cut, ...)
    text: str  # one line without its newline
    timestamp: str | None = None  # RFC 3339, strictly increasing: ``since`` resumes after it
    truncated: bool = False  # a note saying the output was cut here: nothing after it is stored


class SessionBackend(ABC):
    """Start, watch and stop session containers.

    Implementations treat "already gone" (Docker 404/409) as success in ``stop``/``remove``.
    """

    @abstractmethod
    def start(self, spec: SessionSpec) -> Handle:
        """Create and start the session; return at once (do not wait for the web server).

        Raises ImageMissing when the image is absent, BackendError on any other failure.
        """

    @abstractmethod
    def address(self, handle: Handle) -> Target | None:
        """Where to reach the session's port, or None when it has no address (yet/any more)."""

    @abstractmethod
    def poll(self, handle: Handle) -> ExitStatus | None:
        """None while the session runs, else how it ended. A vanished session is
        ``ExitStatus(None, error="gone")``."""

    def running_ids(self) -> set[str] | None:
        """The ``container_id`` of every session running now, from one call to the engine,
        so the monitor polls only the others; None: not known this way (poll each)."""
        return None

    @abstractmethod
    def stop(self, handle: Handle, *, now: bool = False, timeout: float = 10.0) -> None:
        """Graceful (SIGTERM, then SIGKILL after ``timeout``) unless ``now``."""

    @abstractmethod
    def remove(self, handle: Handle) -> None:
        """Remove what ``start`` created (container, per-session files on the engine)."""

    @abstractmethod
    def logs(
        self, handle: Handle, *, since: str | None = None, follow: bool = False
    ) -> Iterator[LogLine]:
        """The session's output in order, stdout and stderr apart.

        The contract the log pump relies on (``manager/logs/pump.py``):

        - complete: every line the script printed, in order per stream, or a ``truncated``
          note where the output was cut (the size cap): never a silent gap, however fast the
          script prints. A backend must therefore not read from a store that drops unread
          output (Docker's rotating json-file log): sessions write their output through the
          runner's capture process (``runner-image/smrunner/capture.py``) into a per-run
          capture folder the backend provides (a bind mount; on Kubernetes a volume the
          manager also mounts), read with ``manager.sessions.capture.read_capture``; that
          gives backpressure (a script printing faster than the file is written waits);
        - bounded: no line longer than ``SM_LOG_MAX_LINE`` plus a cut marker, and no more than
          ``SM_LOG_MAX_BYTES`` of output plus one line; reading never holds more than one line;
        - resumable: each line has a strictly increasing ``timestamp``; ``since`` (a timestamp
          already seen, exclusive) carries on after it, exactly, in a new process too;
        - ``follow`` keeps going until the session has ended and its output is all read; gaps
          the backend cannot rule out (the capture was killed with the session) end the output
          with a ``debug`` note;
        - readable after the session ended, until ``remove``.
        """

    @abstractmethod
    def stats(self, handle: Handle) -> dict[str, Any]:
        """Resource use now (memory bytes, peak when known); {} when unknown."""

    @abstractmethod
    def list_sessions(self) -> list[Handle]:
        """Every session container of this installation, running or not (for re-adoption)."""

    def get_state(self, handle: Handle) -> dict[str, Any]:
        return dict(handle.state)

    def load_state(self, execution_uuid: str, state: dict[str, Any]) -> Handle:
        return Handle(execution_uuid=execution_uuid, state=dict(state))

    def ping(self) -> dict[str, Any]:
        """Engine status for /health; never raises."""
        return {"status": "unknown"}
