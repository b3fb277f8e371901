"""The proxy's wait for a starting session: health checks close together, the page served as
soon as the runner answers."""

from __future__ import annotations

from itertools import islice
from types import SimpleNamespace

from manager.sessions.backend import Handle, Target
from manager.sessions.monitor import Activity
from manager.sessions.resolver import SessionResolver, ready_pauses


def test_checks_are_2_ms_apart_first_and_never_more_than_10_ms() -> None:
    assert list(islice(ready_pauses(), 6)) == [0.002, 0.004, 0.008, 0.01, 0.01, 0.01]


class StartingBackend:
    """A starting session's engine: it has an address (the runner may not answer yet)."""

    def __init__(self) -> None:
        self.addresses = 0

    def load_state(self, execution_uuid: str, state: dict) -> Handle:
        return Handle(execution_uuid=execution_uuid, state=dict(state))

    def address(self, handle: Handle) -> Target:
        self.addresses += 1
        return Target("10.0.0.7", 8080)


def test_a_starting_session_is_served_once_its_health_check_answers() -> None:
    checks: list[tuple[str, int]] = []

    def health_check(host: str, port: int) -> bool:
        checks.append((host, port))
        return len(checks) >= 4

    backend = StartingBackend()
    resolver = SessionResolver(None, Activity(), admin_inspect=False, backend=backend,
                               health_check=health_check)  # fmt: skip
    process = SimpleNamespace(backend_state={"container_id": "c1"})
    target = resolver._await_ready(process, "run-1")
    assert (target.host, target.port, target.session_key) == ("10.0.0.7", 8080, "run-1")
    assert checks == [("10.0.0.7", 8080)] * 4
    assert backend.addresses == 1  # the engine is asked for the address once, not each check
