"""The log pump on the FakeBackend: order, debug events, the row, caps, resuming after a kill."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from manager.logs import LogHub, LogSettings
from manager.logs.pump import Pump
from manager.logs.store import TRUNCATION_MARK, count_lines, read_lines
from manager.models import Execution, utcnow
from manager.sessions.backend import Handle, SessionSpec
from manager.sessions.fake import FakeBackend, FakeScript
from manager.sessions.service import append_debug


@pytest.fixture
def fake(app_config) -> FakeBackend:
    backend = FakeBackend(FakeScript(exit_code=None))
    app_config["SM_TEST_BACKEND"] = backend
    app_config["SM_LOG_PUMPS"] = True  # pumps and flush loops, without the session monitor
    app_config["SM_LOG_ROW_INTERVAL"] = 0.1
    return backend


@pytest.fixture
def hub(fake, app) -> Iterator[LogHub]:
    found: LogHub = app.extensions["sm_logs"]
    yield found
    found.stop()


@pytest.fixture
def run(app, make_user, fake) -> tuple[Execution, Handle]:
    """A live fake session and its execution row (committed)."""
    from manager.extensions import db

    user_id = make_user("olga")
    run_id = str(uuid.uuid4())
    with app.app_context():
        execution = Execution(user_id=user_id, execution_uuid=run_id, status="running")
        db.session.add(execution)
        db.session.commit()
        db.session.refresh(execution)
        db.session.expunge(execution)
    spec = SessionSpec(name=f"sm-{run_id}", image="fake", execution_uuid=run_id, labels={},
                       mounts=(), environment={})  # fmt: skip
    return execution, fake.start(spec)


def row(app, run_id: str) -> Execution:
    from manager.extensions import db

    with app.app_context():
        found = db.session.execute(
            select(Execution).where(Execution.execution_uuid == run_id)
        ).scalar_one()
        db.session.expunge(found)
        return found


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_live_pump_stores_output_and_debug_events_in_order(fake, app, hub, run):
    execution, handle = run
    seen: list[int] = []
    hub.listeners.append(lambda run_id, lines: seen.extend(line.seq for line in lines))
    with app.app_context():
        append_debug(execution, "container started")
        pump = hub.ensure_pump(execution, fake, handle)
        assert pump is not None and hub.ensure_pump(execution, fake, handle) is pump
        for n in range(1, 201):
            fake.emit(handle, f"out {n}")
            if n % 50 == 0:
                fake.emit(handle, f"err {n}", "stderr")
        path = hub.path_for(execution)
        wait_for(lambda: count_lines(path) == 205)
        append_debug(execution, "halfway")
        fake.emit(handle, "last \x1b[32mgreen\x1b[0m\ttab")
        fake.finish(handle, 0)
        hub.drain(execution, fake, handle)
        append_debug(execution, "ended: completed")
        hub.release(execution.execution_uuid)
    lines = read_lines(path)
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    assert seen == [line.seq for line in lines]  # the watchers got every line, once, in order
    texts = [line.text for line in lines]
    assert texts[0] == "container started" and lines[0].stream == "debug"
    assert texts.index("out 50") < texts.index("err 50") < texts.index("out 51")
    assert texts[-3:] == ["halfway", "last \x1b[32mgreen\x1b[0m\ttab", "ended: completed"]
    stored = row(app, execution.execution_uuid)
    assert stored.output.splitlines() == [f"out {n}" for n in range(1, 201)] + [texts[-2]]
    assert stored.error_output == "".join(f"err {n}\n" for n in range(50, 201, 50))
    assert str(path).endswith(
        f"executions/{stored.user_id}/{utcnow():%Y-%m-%d}/execution_{stored.execution_uuid}.log"
    )


def test_row_is_kept_in_sync_while_the_run_is_live(fake, app, hub, run):
    execution, handle = run
    with app.app_context():
        hub.ensure_pump(execution, fake, handle)
    for n in range(1, 11):
        fake.emit(handle, f"line {n}")
    wait_for(lambda: (row(app, execution.execution_uuid).output or "").count("\n") == 10)
    fake.finish(handle, 0)


def test_a_restarted_manager_resumes_where_the_file_ends(fake, app, run):
    """Killed mid-run (a torn last record, a row that lags), a new hub loses and doubles nothing."""
    execution, handle = run
    first = app.extensions["sm_logs"]
    first.stop()
    for n in range(1, 301):
        fake.emit(handle, f"line {n}")
    with app.app_context():
        Pump(first, first.open(execution), fake, handle, follow=False).run()
        path = first.path_for(execution)
    assert count_lines(path) == 300
    with path.open("ab") as torn:
        torn.write(b"301 2026-11-25T10:00:00.000000000Z stdout\tline 30")
    for n in range(301, 601):
        fake.emit(handle, f"line {n}", "stderr" if n % 7 == 0 else "stdout")
    fake.finish(handle, 0)

    # The new process: a fresh hub on the same files and database, as after `serve` restarts.
    with app.app_context():
        from manager.extensions import db

        db.session.execute(
            Execution.__table__.update()
            .where(Execution.execution_uuid == execution.execution_uuid)
            .values(output="line 1\n")  # the row lagged behind the file
        )
        db.session.commit()
        second = LogHub(LogSettings.from_config(app.config), db.engine)
        second.drain(execution, fake, handle)
        second.release(execution.execution_uuid)
    lines = read_lines(path)
    assert [line.text for line in lines] == [f"line {n}" for n in range(1, 601)]
    assert [line.seq for line in lines] == list(range(1, 601))
    stored = row(app, execution.execution_uuid)
    assert stored.output.splitlines() == [f"line {n}" for n in range(1, 601) if n <= 300 or n % 7]
    assert stored.error_output.splitlines() == [f"line {n}" for n in range(301, 601) if n % 7 == 0]


def test_long_lines_are_cut_and_the_size_cap_writes_one_note(fake, app, run):
    app.extensions["sm_logs"].stop()
    with app.app_context():
        from manager.extensions import db

        settings = LogSettings.from_config({**app.config, "SM_LOG_MAX_BYTES": 20_000,
                                            "SM_LOG_MAX_LINE": 100})  # fmt: skip
        hub = LogHub(settings, db.engine)
    execution, handle = run
    fake.emit(handle, "é" * 300)
    for n in range(1, 2001):
        fake.emit(handle, f"line {n}")
    fake.finish(handle, 0)
    with app.app_context():
        pump = Pump(hub, hub.open(execution), fake, handle, follow=False)
        pump.run()
        append_debug(execution, "ended")  # lifecycle events still get in after the cap
        hub.release(execution.execution_uuid)
        path = hub.path_for(execution)
    assert pump.lines == 2001  # it kept reading: the session is never blocked
    lines = read_lines(path)
    cut = lines[0].text
    assert cut.startswith("é" * 50) and "[line cut: 600 bytes, SM_LOG_MAX_LINE=100]" in cut
    notes = [line for line in lines if line.text.startswith(TRUNCATION_MARK)]
    assert len(notes) == 1 and notes[0].stream == "debug" and "20000 bytes" in notes[0].text
    assert path.stat().st_size <= 20_000 + 500
    kept = [line.text for line in lines if line.stream == "stdout"][1:]
    assert kept == [f"line {n}" for n in range(1, len(kept) + 1)]  # a prefix, no holes


def test_a_run_of_200000_lines_keeps_every_line_under_the_default_cap(fake, app, run):
    app.extensions["sm_logs"].stop()
    execution, handle = run
    for n in range(1, 200_001):
        fake.emit(handle, f"{n:06d} some output")
    fake.finish(handle, 0)
    hub = app.extensions["sm_logs"]
    with app.app_context():
        started = time.perf_counter()
        Pump(hub, hub.open(execution), fake, handle, follow=False).run()
        elapsed = time.perf_counter() - started
        hub.release(execution.execution_uuid)
        path = hub.path_for(execution)
    lines = read_lines(path)
    assert len(lines) == 200_000
    assert all(line.text == f"{n:06d} some output" for n, line in enumerate(lines, 1))
    assert not any(line.stream == "debug" for line in lines)  # no truncation note
    assert elapsed < 20, f"{200_000 / elapsed:.0f} lines/s"
    stored = row(app, execution.execution_uuid)
    assert stored.output.startswith("000001 some output\n")
    assert stored.output.rstrip().endswith("[more output in the log file " + path.name + "]")
    assert len(stored.output) < 2 * 1024 * 1024 + 200  # the row keeps a head, the file all


def test_the_stderr_head_of_a_long_run_reads_only_its_head(app, hub, run):
    """Every run's end asks for it on the event loop: a long run's file is not read whole."""
    execution, _handle = run
    with app.app_context():
        log = hub.open(execution)
        log.add("stderr", "exec /usr/local/bin/python: no such file", "2026-12-05T10:00:00.1Z")
        for n in range(100_000):
            log.add("stdout", f"{n} output", f"2026-12-05T10:00:01.{n:06d}Z")
        log.add("stderr", "a warning at the end", "2026-12-05T10:00:02.1Z")
        hub.flush(log)
        assert hub.stderr_head(execution) == "exec /usr/local/bin/python: no such file"
        assert "a warning at the end" in hub.stderr_head(execution, scan=200_000)
