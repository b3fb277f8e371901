"""One monitor pass asks the engine about all sessions at once and removes ended containers at
once, after their runs' ends are committed (bench/load: one call after another, 50 sessions made
a pass take a minute, and a 1-second batch run was recorded "completed" 90 s after its execute).

The engine here is the project's in-memory ``FakeBackend`` with each call made slow on purpose
(0.2 s): what is checked is which calls overlap and what the database says while they run, not
how fast anything is. With the real engine the same path ends every batch run of
``tests/e2e`` and ``tests/faults``; ``bench/load`` measures it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from manager.models import utcnow
from manager.sessions.fake import FakeScript
from manager.sessions.monitor import in_parallel
from tests.sessions.test_session_rules import status_of
from tests.support.catalog import script_id, tick

USERS = ("ana", "ben", "cleo", "dan")


class Overlap:
    """Wraps a backend method: each call waits ``pause`` s and the most calls in flight at
    once is kept; ``inside`` (if given) runs during the call."""

    def __init__(self, method: Callable[..., Any], pause: float = 0.2, inside=None):
        self.method, self.pause, self.inside = method, pause, inside
        self.now = self.most = self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, handle: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        try:
            if self.inside is not None:
                self.inside(handle)
            time.sleep(self.pause)
            return self.method(handle, *args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


def start_runs(app, make_user, api, script: str, per_user: int) -> list[str]:
    runs = []
    for name in USERS:
        make_user(name, "operator")
        client = api(name)
        sid = script_id(app, script)
        for _ in range(per_user):
            answer = client.post(f"/api/scripts/{sid}/execute", json={})
            assert answer.status_code == 201, answer.get_json()
            runs.append(answer.get_json()["execution_id"])
    return runs


def test_ended_runs_are_committed_first_then_their_containers_go_together(
    ready_app, make_user, api, fake
):
    fake.program = FakeScript(exit_code=None)
    runs = start_runs(ready_app, make_user, api, "unit_converter.py", per_user=2)
    tick(ready_app)
    seen_during_removal: dict[str, str] = {}

    def record(handle: Any) -> None:  # what another request would read meanwhile
        seen_during_removal[handle.execution_uuid] = status_of(ready_app, handle.execution_uuid)

    removal = Overlap(fake.remove, inside=record)
    fake.remove = removal  # type: ignore[method-assign]
    for run in runs:
        fake.finish(run, 0)
    tick(ready_app)
    assert seen_during_removal == {run: "completed" for run in runs}
    assert removal.calls == len(runs)
    assert removal.most >= 4, removal.most  # together, not one after another
    assert all(fake.sessions[s].removed for s in fake.sessions)


def test_the_engine_is_asked_about_all_sessions_at_once(ready_app, make_user, api, fake):
    fake.program = FakeScript(exit_code=None)
    runs = start_runs(ready_app, make_user, api, "unit_converter.py", per_user=2)
    fake.running_ids = lambda: None  # type: ignore[method-assign]  # no listing: poll each
    polls = Overlap(fake.poll)
    fake.poll = polls  # type: ignore[method-assign]
    tick(ready_app)
    assert polls.calls == len(runs)
    assert polls.most >= 4, polls.most
    assert {status_of(ready_app, run) for run in runs} == {"running"}


def test_sessions_past_their_start_deadline_are_marked_then_stopped_together(
    ready_app, make_user, api, fake
):
    fake.program = FakeScript(exit_code=None, start_polls=10**6)  # never answers
    runs = start_runs(ready_app, make_user, api, "calculator.py", per_user=1)
    seen_during_stop: dict[str, str] = {}

    def record(handle: Any) -> None:
        seen_during_stop[handle.execution_uuid] = status_of(ready_app, handle.execution_uuid)

    stops = Overlap(fake.stop, inside=record)
    fake.stop = stops  # type: ignore[method-assign]
    later = utcnow() + timedelta(minutes=10)
    tick(ready_app, clock=lambda: later)
    assert seen_during_stop == {run: "stopping" for run in runs}
    assert stops.most >= 2, stops.most
    tick(ready_app, clock=lambda: later)
    assert {status_of(ready_app, run) for run in runs} == {"failed"}


def test_in_parallel_keeps_order_and_hands_back_exceptions():
    def job(index: int) -> Callable[[], int]:
        def run() -> int:
            time.sleep(0.01 * (5 - index))
            if index == 3:
                raise ValueError("three")
            return index * 10

        return run

    results = in_parallel([job(i) for i in range(5)], workers=3)
    assert results[:3] == [0, 10, 20] and results[4] == 40
    assert isinstance(results[3], ValueError)
    assert in_parallel([], workers=3) == []
    assert in_parallel([lambda: 7], workers=3) == [7]


def _slow_start(fake, app, api_client, script: str):
    """Execute ``script`` on a thread whose engine start waits for the returned event."""
    release, entered = threading.Event(), threading.Event()
    start = fake.start

    def waiting(spec: Any) -> Any:
        entered.set()
        assert release.wait(30)
        return start(spec)

    fake.start = waiting  # type: ignore[method-assign]
    answers: list[Any] = []
    sid = script_id(app, script)
    thread = threading.Thread(
        target=lambda: answers.append(api_client.post(f"/api/scripts/{sid}/execute", json={}))
    )
    thread.start()
    assert entered.wait(30)
    return release, thread, answers


def test_a_start_slower_than_the_deadline_is_not_declared_lost(ready_app, make_user, api, fake):
    """bench/load: under load an engine start took longer than START_DEADLINE; the monitor
    declared the run lost and removed its folder while the engine was creating its container
    ("bind source path does not exist"). A start in progress in this process is never judged."""
    make_user("olga", "operator")
    fake.program = FakeScript(exit_code=None)
    release, thread, answers = _slow_start(fake, ready_app, api("olga"), "unit_converter.py")
    later = utcnow() + timedelta(minutes=10)
    tick(ready_app, clock=lambda: later)  # long past the deadline, the start still going on
    release.set()
    thread.join(30)
    assert answers[0].status_code == 201, answers[0].get_json()
    run = answers[0].get_json()["execution_id"]
    tick(ready_app, clock=utcnow)
    assert status_of(ready_app, run) == "running"


def test_a_start_another_process_gave_up_on_does_not_run(ready_app, make_user, api, fake):
    """With several manager processes the leader cannot see another's start in progress: after
    START_DEADLINE it records the run lost. The container started meanwhile is stopped at once."""
    from manager.extensions import db
    from manager.models import ScriptProcess

    make_user("olga", "operator")
    fake.program = FakeScript(exit_code=None)
    release, thread, answers = _slow_start(fake, ready_app, api("olga"), "unit_converter.py")
    with ready_app.app_context():  # what the other process's monitor wrote meanwhile
        db.session.execute(update(ScriptProcess).values(status="ended"))
        db.session.commit()
        db.session.remove()
    release.set()
    thread.join(30)
    [session] = fake.sessions.values()
    assert session.stopped == "now"
    with ready_app.app_context():
        assert db.session.execute(select(ScriptProcess.status)).scalars().all() == ["ended"]
        db.session.remove()
