"""The pump on real parts: ``scriptsmanager serve`` SIGKILLed mid-run and restarted, a Docker
session printing numbered lines, a Socket.IO watcher riding through the restart.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator

import pytest

from manager.logs.store import read_lines
from tests.logs.test_stream import Watcher, assert_every_line_once_in_order, cookie_of
from tests.support.serve import Server, docker_engine, login, script_ids, wait_status

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-logs-{RUN}"
PREFIX = f"smtest-logs-{RUN}"

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


NUMBERED = '''"""
ScriptsManager Metadata:
@description: Print numbered lines on stdout (and every 100th on stderr) at a steady rate
@required_level: operator
@parameters: [
    {"name": "count", "type": "int", "default": 3000, "min": 1, "max": 1000000},
    {"name": "rate", "type": "float", "default": 300, "min": 1, "max": 1000000}
]
@execution_timeout: 600
"""

import sys
import time

count = int(PARAMETERS.get("count", 3000))
rate = float(PARAMETERS.get("rate", 300))
began = time.time()
for n in range(1, count + 1):
    delay = began + n / rate - time.time()
    if delay > 0:
        time.sleep(delay)
    print(f"line {n}", flush=True)
    if n % 100 == 0:
        print(f"err {n}", file=sys.stderr, flush=True)
'''


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("pump-e2e")
    instance = Server(root, INSTANCE, PREFIX)
    (root / "script_groups" / "data_processing" / "numbered_lines.py").write_text(NUMBERED)
    instance.start()
    yield instance
    instance.kill()


def numbered(texts: list[str], word: str) -> list[int]:
    return [int(m.group(1)) for t in texts if (m := re.fullmatch(rf"{word} (\d+)", t))]


def test_a_manager_killed_mid_run_loses_and_doubles_no_line(server: Server):
    session = login(server)
    script = script_ids(server, session)["numbered_lines.py"]
    started = session.post(f"{server.url}/api/scripts/{script}/execute",
                           json={"parameters": {"count": 3000, "rate": 300}})  # fmt: skip
    assert started.status_code == 201, started.text
    run_id = started.json()["execution_id"]
    watcher = Watcher(server.url, cookie_of(session), run_id, server.log).connect()
    logs = list((server.root / "logs" / "executions").rglob(f"*{run_id}.log"))
    deadline = time.time() + 60
    while not logs or len(numbered([line.text for line in read_lines(logs[0])], "line")) < 600:
        assert time.time() < deadline, server.log()
        time.sleep(0.1)
        logs = logs or list((server.root / "logs").rglob(f"*{run_id}.log"))
    watcher.wait(lambda: len(watcher.texts()) > 300, 30)

    server.kill()  # SIGKILL: no flush, no goodbye; the container keeps printing
    time.sleep(2)
    server.start()

    done = wait_status(server, session, run_id, {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    lines = read_lines(logs[0])
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    stdout = [line.text for line in lines if line.stream == "stdout"]
    stderr = [line.text for line in lines if line.stream == "stderr"]
    assert numbered(stdout, "line") == list(range(1, 3001))
    assert numbered(stderr, "err") == list(range(100, 3001, 100))
    debug = [line.text for line in lines if line.stream == "debug"]
    assert debug[0].startswith("requested by admin") and debug[-1].startswith("ended: completed")

    # The row was brought back in line with the file by the restarted manager.
    with sqlite3.connect(server.root / "data" / "scriptsmanager.db") as db:
        output, errors = db.execute(
            "SELECT output, error_output FROM execution_logs WHERE execution_uuid = ?", (run_id,)
        ).fetchone()
    assert numbered(output.splitlines(), "line") == list(range(1, 3001))
    assert numbered(errors.splitlines(), "err") == list(range(100, 3001, 100))

    # The watcher was cut off by the kill, reconnected with its last seq, and has it all.
    watcher.wait(lambda: any(t.startswith("ended:") for t in watcher.texts("debug")), 30)
    assert watcher.connects >= 2
    assert_every_line_once_in_order(watcher)
    assert numbered(watcher.texts(), "line") == list(range(1, 3001))
    watcher.close()
