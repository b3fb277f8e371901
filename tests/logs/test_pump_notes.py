"""The pump and the backend's notes: a truncation note closes the output and flags the row; a
note about the end of the output is stored once however often it is read."""

from __future__ import annotations

from manager.logs.pump import Pump
from manager.logs.store import TRUNCATION_MARK, read_lines
from manager.sessions.backend import LogLine
from tests.logs.test_pump import fake, hub, row, run  # noqa: F401 - fixtures


def test_a_truncation_note_closes_the_output_and_sets_log_truncated(fake, app, hub, run):  # noqa: F811
    execution, handle = run
    session = fake.session(handle)
    fake.emit(handle, "kept")
    session.lines.append(LogLine("debug", "the cap was reached", "2024-01-01T00:00:01.000000000Z",
                                 truncated=True))  # fmt: skip
    fake.emit(handle, "dropped")
    fake.finish(handle, 0)
    assert row(app, execution.execution_uuid).log_truncated is False
    with app.app_context():
        pump = Pump(hub, hub.open(execution), fake, handle, follow=False)
        pump.run()
        hub.release(execution.execution_uuid)
        path = hub.path_for(execution)
    lines = [(line.stream, line.text) for line in read_lines(path)]
    assert lines == [("stdout", "kept"), ("debug", f"{TRUNCATION_MARK} the cap was reached")]
    assert row(app, execution.execution_uuid).log_truncated is True


def test_a_note_without_a_stamp_is_stored_once_across_reads(app, hub, run):  # noqa: F811
    execution, _ = run
    with app.app_context():
        run_log = hub.open(execution)
        run_log.add("stdout", "line", "2024-01-01T00:00:01.000000000Z")
        run_log.add("debug", "the capture stopped early", None)
        # A drain after the live pump reads from the last line again and meets the note again.
        run_log.add("debug", "the capture stopped early", None)
        hub.release(execution.execution_uuid)
        path = hub.path_for(execution)
    texts = [line.text for line in read_lines(path)]
    assert texts == ["line", "the capture stopped early"]
