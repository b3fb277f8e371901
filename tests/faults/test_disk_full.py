"""The disk that holds the logs fills up under a serving manager.

SM_LOG_DIR is a 4 MiB tmpfs mounted for this module (root needed; skipped otherwise). A run that
prints more than fits is cut with a note saying why; the manager stays up; every record written
is whole; a run started while the disk is full is refused or cut with the same kind of note, and
runs work again once there is room.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import missing
from tests.faults.support import add_group, execute, run_log
from tests.support.serve import Server, docker_engine, login, script_ids, wait_status

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-faultsdisk-{RUN}"
PREFIX = f"smtest-faultsdisk-{RUN}"
FINAL = {"completed", "failed", "lost", "killed", "timed_out"}

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    if os.geteuid() != 0:
        missing("docker", "mounting a small tmpfs for the logs needs root (as Docker tests do)")
    root = tmp_path_factory.mktemp("faultsdisk")
    logs = root / "logs"
    logs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(logs)], check=True)
    instance = Server(root, INSTANCE, PREFIX)
    add_group(root, lines=20, pause=0.01)
    try:
        instance.start()
        yield instance
    finally:
        instance.kill()
        subprocess.run(["umount", "--lazy", str(logs)], check=False)


def test_a_full_log_disk_cuts_the_run_and_the_manager_stays_up(server: Server):
    session = login(server)
    ids = script_ids(server, session)
    flood = execute(server, session, ids["flood.py"])
    assert flood.status_code == 201, flood.text
    run = flood.json()
    done = wait_status(server, session, run["execution_id"], FINAL, 120)
    assert done["log_truncated"] is True, done  # the run's page says its log was cut
    records = run_log(server, run)  # every record parses: no half-written one
    notes = [text for _seq, stream, text in records if stream == "debug"]
    assert any("[log truncated]" in n and "disk holding the logs is full" in n for n in notes), (
        notes[-5:]
    )
    seqs = [seq for seq, _stream, _text in records]
    assert seqs == sorted(set(seqs))
    assert requests.get(server.url + "/health", timeout=10).status_code == 200

    # Its capture goes with it (removed with its container, after its end is recorded); then
    # something else fills the disk.
    capture = server.root / "logs" / "capture" / run["execution_id"]
    deadline = time.monotonic() + 60
    while capture.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not capture.exists(), "the ended run's capture folder stayed"
    filler = server.root / "logs" / "filler"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
    refused = execute(server, session, ids["ticker.py"])
    assert refused.status_code == 507, refused.text[:300]
    body = refused.json()
    assert body["limit"] == "log_disk" and "disk that holds the run logs is full" in body["message"]
    assert not [s for s in session.get(server.url + "/api/sessions").json()["sessions"]], (
        "a refused run leaves nothing behind"
    )

    filler.unlink()  # an admin frees space: runs work again, their logs whole
    again = execute(server, session, ids["ticker.py"])
    assert again.status_code == 201, again.text[:300]
    second = wait_status(server, session, again.json()["execution_id"], FINAL)
    assert second["status"] == "completed" and second["log_truncated"] is False, second
    printed = [t for _seq, stream, t in run_log(server, again.json()) if stream == "stdout"]
    assert printed == [f"tick {i:04d}" for i in range(20)]
