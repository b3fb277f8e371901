"""A finished run is recorded when its output ends, not at the monitor's next pass.

Real parts: ``scriptsmanager serve`` with Docker sessions and the real runner image. The
monitor's interval is set to 60 s, so a run recorded done within seconds was recorded because
the log pump, reading the run's output to its end, woke the monitor.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.support.serve import Server, docker_engine, login, script_ids, wait_status

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-nudge-{RUN}"
PREFIX = f"smtest-nudge-{RUN}"
INTERVAL = 60.0

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    instance = Server(
        tmp_path_factory.mktemp("nudge"), INSTANCE, PREFIX, SM_MONITOR_INTERVAL=str(INTERVAL)
    )
    instance.start()
    yield instance
    instance.kill()


def test_a_batch_run_is_recorded_done_when_its_output_ends(server: Server) -> None:
    session = login(server)
    ids = script_ids(server, session)
    time.sleep(1)  # the first pass (right at start-up) is behind us: the next is a minute away
    for _ in range(2):  # twice: the monitor's wake is not spent by the first run
        began = time.monotonic()
        started = session.post(
            f"{server.url}/api/scripts/{ids['csv_summary.py']}/execute", json={"parameters": {}}
        )
        assert started.status_code == 201, started.text
        done = wait_status(
            server, session, started.json()["execution_id"], {"completed", "failed"}, timeout=40
        )
        assert done["status"] == "completed", done
        assert time.monotonic() - began < INTERVAL / 2, "recorded at a pass, not at the end"
