"""Output capture on real parts: ``scriptsmanager serve``, Docker sessions printing as fast as
Python can, a manager SIGKILLed in the middle, the size cap, and a 256 MiB line while ``/health``
is probed. Every line is stored exactly once and in order, or cut with an explicit note."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from manager.logs.store import TRUNCATION_MARK, Line, count_lines, read_lines
from tests.support.serve import (
    Server,
    docker_engine,
    login,
    remove_instance,
    script_ids,
    wait_status,
)

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-capture-{RUN}"
CAPPED_INSTANCE = f"{INSTANCE}-capped"
PREFIX = f"smtest-capture-{RUN}"
CAP = 2_000_000  # SM_LOG_MAX_BYTES of the capped server

pytestmark = pytest.mark.docker

HEADER = '''"""
ScriptsManager Metadata:
@description: {what}
@required_level: operator
@parameters: [
    {{"name": "count", "type": "int", "default": 300000, "min": 1, "max": 1000000}},
    {{"name": "pause", "type": "float", "default": 0, "min": 0, "max": 60}}
]
@execution_timeout: 600
"""
'''
# Numbered lines in a tight loop, every 1000th on stderr too; a pause in the middle (when the
# test kills the manager) when asked.
FLOOD = (
    HEADER.format(what="Print numbered lines as fast as it can")
    + """
import sys
import time

count = int(PARAMETERS.get("count", 300000))
pause = float(PARAMETERS.get("pause", 0))
for n in range(1, count + 1):
    print(f"line {n}")
    if n % 1000 == 0:
        print(f"err {n}", file=sys.stderr)
    if pause and n == count // 2:
        sys.stdout.flush()
        time.sleep(pause)
"""
)
LONG_LINE = (
    HEADER.format(what="Print a 256 MiB line without a newline")
    + """
import sys

print("before")
chunk = "x" * (1 << 20)
for _ in range(256):
    sys.stdout.write(chunk)
print()
print("after")
"""
)
FORGER = (
    HEADER.format(what="Write into its own capture file, past the cap")
    + """
import time

print("forging")
time.sleep(1)  # the capture process stores that line before the forgery starts
with open("/run/sm/capture/output.log", "a") as capture:
    for n in range(100000):
        capture.write(f"{n} not a record from the capture process " + "z" * 40 + "\\n")
time.sleep(120)
"""
)


@pytest.fixture(scope="module")
def engine():
    for client in docker_engine(INSTANCE, PREFIX):
        yield client
        remove_instance(client, CAPPED_INSTANCE, PREFIX)


def make_server(root: Path, instance: str, **env: str) -> Server:
    # Two servers of one instance would reap each other's sessions as orphans.
    server = Server(root, instance, PREFIX, **env)
    folder = root / "script_groups" / "data_processing"
    (folder / "flood.py").write_text(FLOOD)
    (folder / "long_line.py").write_text(LONG_LINE)
    (folder / "forger.py").write_text(FORGER)
    server.start()
    return server


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    instance = make_server(tmp_path_factory.mktemp("capture"), INSTANCE)
    yield instance
    instance.kill()


@pytest.fixture(scope="module")
def capped(engine, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("capture-capped")
    instance = make_server(root, CAPPED_INSTANCE, SM_LOG_MAX_BYTES=str(CAP))
    yield instance
    instance.kill()


def start(server: Server, session: requests.Session, script: str, **parameters) -> str:
    script_id = script_ids(server, session)[script]
    started = session.post(f"{server.url}/api/scripts/{script_id}/execute",
                           json={"parameters": parameters})  # fmt: skip
    assert started.status_code == 201, started.text
    return str(started.json()["execution_id"])


def log_file(server: Server, run_id: str) -> Path | None:
    found = list((server.root / "logs" / "executions").rglob(f"execution_{run_id}.log"))
    return found[0] if found else None


def numbered(lines: list[Line], stream: str, word: str) -> list[int]:
    pattern = re.compile(rf"{word} (\d+)")
    return [int(m.group(1)) for li in lines if li.stream == stream
            and (m := pattern.fullmatch(li.text))]  # fmt: skip


def assert_whole_log(lines: list[Line], count: int) -> None:
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    assert numbered(lines, "stdout", "line") == list(range(1, count + 1))
    assert numbered(lines, "stderr", "err") == list(range(1000, count + 1, 1000))
    assert not [li for li in lines if li.stream in ("stdout", "stderr")
                and not re.fullmatch(r"(line|err) \d+", li.text)]  # fmt: skip
    debug = [line.text for line in lines if line.stream == "debug"]
    assert not [text for text in debug if TRUNCATION_MARK in text or "missing" in text], debug


def test_300000_lines_printed_at_full_speed_are_all_stored_once_in_order(server: Server):
    session = login(server)
    run_id = start(server, session, "flood.py", count=300_000)
    done = wait_status(server, session, run_id, {"completed", "failed"}, timeout=180)
    assert done["status"] == "completed", done
    assert done["log_truncated"] is False
    path = log_file(server, run_id)
    assert path is not None
    assert_whole_log(read_lines(path), 300_000)
    assert not (server.root / "logs" / "capture" / run_id).exists()  # removed with the session


def test_a_manager_killed_mid_flood_loses_and_doubles_no_line(server: Server):
    session = login(server)
    # The pause keeps the session alive across the restart: the new manager's pump resumes.
    run_id = start(server, session, "flood.py", count=300_000, pause=6)
    deadline = time.time() + 60
    while (path := log_file(server, run_id)) is None or count_lines(path) < 20_000:
        assert time.time() < deadline, server.log()
        time.sleep(0.05)

    server.kill()  # SIGKILL: no flush, no goodbye; the session keeps printing
    stored_at_kill = count_lines(path)
    time.sleep(1)
    server.start()

    done = wait_status(server, session, run_id, {"completed", "failed"}, timeout=180)
    assert done["status"] == "completed", done
    assert stored_at_kill < 300_000  # killed in the middle of storing the output
    # The new manager resumes after the last stored line: with a live pump when the session
    # still runs ("log pump resumed after line ..."), else when it collects the ended run.
    assert_whole_log(read_lines(path), 300_000)


def test_output_past_the_size_cap_is_cut_with_a_note_in_the_log_the_api_and_the_page(
    capped: Server,
):
    session = login(capped)
    run_id = start(capped, session, "flood.py", count=300_000)
    done = wait_status(capped, session, run_id, {"completed", "failed"}, timeout=180)
    path = log_file(capped, run_id)
    assert path is not None
    debug = [li.text for li in read_lines(path, streams=["debug"])]
    assert done["status"] == "completed", debug  # the script was never blocked for good
    assert done["log_truncated"] is True
    assert path is not None and path.stat().st_size < CAP + 20_000
    lines = read_lines(path)
    out = numbered(lines, "stdout", "line")
    assert 10_000 < len(out) < 300_000 and out == list(range(1, len(out) + 1))  # a whole head
    notes = [li for li in lines if li.stream == "debug" and li.text.startswith(TRUNCATION_MARK)]
    assert len(notes) == 1 and f"{CAP} bytes (SM_LOG_MAX_BYTES)" in notes[0].text
    last_output = max(li.seq for li in lines if li.stream in ("stdout", "stderr"))
    assert notes[0].seq > last_output  # the note closes the output
    detail = session.get(f"{capped.url}/api/logs/execution/{run_id}?tail=0").json()
    assert detail["log_truncated"] is True
    page = session.get(f"{capped.url}/logs/{run_id}")
    assert page.status_code == 200 and 'data-sm="run-log-truncated"' in page.text


def test_a_256_mib_line_is_cut_and_the_manager_answers_throughout(capped: Server):
    session = login(capped)
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            response = requests.get(f"{capped.url}/health", timeout=30)
            latencies.append(time.perf_counter() - began)
            assert response.status_code == 200
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        run_id = start(capped, session, "long_line.py")
        done = wait_status(capped, session, run_id, {"completed", "failed"}, timeout=180)
    finally:
        stop.set()
        prober.join(35)
    assert done["status"] == "completed", done
    assert len(latencies) > 10 and max(latencies) < 2.0, sorted(latencies)[-5:]
    path = log_file(capped, run_id)
    assert path is not None
    out = [line.text for line in read_lines(path) if line.stream == "stdout"]
    assert out[0] == "before" and out[2:] == ["after"], [text[:80] for text in out]
    assert out[1].startswith("x" * 16384) and "x" * 16385 not in out[1]
    assert out[1].endswith("the rest of this line is not stored]")
    assert done["log_truncated"] is False  # a cut line is marked in place, the log is whole


def test_a_session_writing_into_its_capture_file_past_the_cap_is_stopped(capped: Server):
    session = login(capped)
    run_id = start(capped, session, "forger.py")
    done = wait_status(capped, session, run_id, {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed" and done["log_truncated"] is True, done
    path = log_file(capped, run_id)
    assert path is not None and path.stat().st_size < CAP + 20_000
    lines = read_lines(path)
    assert [li.text for li in lines if li.stream == "stdout"] == ["forging"]
    notes = [li.text for li in lines if li.text.startswith(TRUNCATION_MARK)]
    assert len(notes) == 1, notes
    assert "wrote to it directly" in notes[0] or "SM_LOG_MAX_BYTES" in notes[0]
