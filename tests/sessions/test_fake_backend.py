"""FakeBackend: the in-memory contract the lifecycle tests rely on."""

from __future__ import annotations

import threading

import pytest

from manager.sessions.backend import BackendError, ExitStatus, ImageMissing, SessionSpec, Target
from manager.sessions.fake import FakeBackend, FakeScript
from manager.sessions.limits import Limits
from manager.sessions.spec import build_spec


def _spec(n: int = 1, image: str = "scriptsmanager-env-base:abc") -> SessionSpec:
    return build_spec(
        execution_uuid=f"00000000-0000-0000-0000-{n:012d}", image=image,
        script_host_dir="/s", script_filename="x.py", workspace_host_dir="/w",
        context_host_file="/c.json", limits=Limits(), user_id=1, script_id=2, project_id=3,
    )  # fmt: skip


def test_batch_session_exits_after_n_polls_with_its_output() -> None:
    backend = FakeBackend(
        FakeScript(output=("hello", ("stderr", "warn")), exit_code=3, run_polls=2)
    )
    handle = backend.start(_spec())
    assert [backend.poll(handle) for _ in range(3)] == [None, None, ExitStatus(3)]
    lines = list(backend.logs(handle))
    assert [(line.stream, line.text) for line in lines] == [("stdout", "hello"), ("stderr", "warn")]
    assert list(backend.logs(handle, since=lines[0].timestamp)) == lines[1:]


def test_slow_start_has_no_address_for_n_calls() -> None:
    backend = FakeBackend(FakeScript(exit_code=None, start_polls=2, target=Target("127.0.0.1", 9)))
    handle = backend.start(_spec())
    assert [backend.address(handle) for _ in range(3)] == [None, None, Target("127.0.0.1", 9)]
    assert backend.poll(handle) is None  # interactive: runs until stopped


def test_graceful_and_immediate_stops() -> None:
    backend = FakeBackend(FakeScript(exit_code=None))
    serving, killed = backend.start(_spec(1)), backend.start(_spec(2))
    backend.stop(serving)
    backend.stop(killed, now=True)
    assert backend.poll(serving) == ExitStatus(0)
    assert backend.poll(killed) == ExitStatus(137)
    assert backend.session(serving).stopped == "graceful"
    assert backend.address(serving) is None


def test_failing_start_and_missing_image() -> None:
    failing = FakeBackend(FakeScript(start_error="The engine said no."))
    with pytest.raises(BackendError, match="The engine said no."):
        failing.start(_spec())
    missing = FakeBackend(missing_images={"scriptsmanager-env-gone:1"})
    with pytest.raises(ImageMissing, match="scriptsmanager-env-gone:1 is not built"):
        missing.start(_spec(image="scriptsmanager-env-gone:1"))
    assert failing.list_sessions() == missing.list_sessions() == []


def test_out_of_memory() -> None:
    backend = FakeBackend(FakeScript(oom=True, run_polls=1))
    handle = backend.start(_spec())
    assert backend.poll(handle) is None
    assert backend.poll(handle) == ExitStatus(137, oom_killed=True)


def test_program_as_a_callable_chooses_per_spec() -> None:
    def program(spec: SessionSpec) -> FakeScript:
        return FakeScript(output=(f"running {spec.image}",), exit_code=0)

    backend = FakeBackend(program)
    handle = backend.start(_spec(image="img:1"))
    assert [line.text for line in backend.logs(handle)] == ["running img:1"]


def test_lost_session_is_gone_and_state_re_adopts() -> None:
    backend = FakeBackend(FakeScript(exit_code=None))
    handle = backend.start(_spec())
    again = backend.load_state(handle.execution_uuid, backend.get_state(handle))
    assert backend.poll(again) is None
    assert [h.execution_uuid for h in backend.list_sessions()] == [handle.execution_uuid]
    backend.lose(handle)
    assert backend.poll(again) == ExitStatus(None, error="gone")
    assert backend.list_sessions() == []
    backend.stop(again)
    backend.remove(again)  # already gone: quiet


def test_duplicate_start_is_refused() -> None:
    backend = FakeBackend()
    backend.start(_spec())
    with pytest.raises(BackendError, match="already exists"):
        backend.start(_spec())


def test_follow_streams_lines_until_the_session_ends() -> None:
    backend = FakeBackend(FakeScript(exit_code=None))
    handle = backend.start(_spec())
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(
        line.text for line in backend.logs(handle, follow=True)))  # fmt: skip
    reader.start()
    backend.emit(handle, "one")
    backend.emit(handle, "two", stream="stderr")
    backend.finish(handle, 0)
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert seen == ["one", "two"]
    assert backend.poll(handle) == ExitStatus(0)
    assert backend.stats(handle) == {}
