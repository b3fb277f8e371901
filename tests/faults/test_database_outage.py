"""PostgreSQL restarted, then unreachable for 30 s, under a serving manager with a run going.

The machine's PostgreSQL cluster is shared, so it is never restarted: the manager reaches it
through a TCP relay this module controls (see ``relay.py``). Cutting the relay resets every
connection and refuses new ones, which is what the manager sees of a restarting or
unreachable server.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.conftest import missing, reset_database
from tests.faults.relay import Relay
from tests.faults.support import add_group, execute, run_log, wait_for
from tests.support.serve import Server, docker_engine, free_port, login, script_ids, wait_status

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-faultsdb-{RUN}"
PREFIX = f"smtest-faultsdb-{RUN}"
TICKS = 120
OUTAGE = 30  # seconds the database stays unreachable

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def database() -> str:
    """A database of this module on the shared server (SM_TEST_POSTGRES_URL's, named
    ``sm_test_faults``: created by the CI script, or here as the postgres user)."""
    base = os.environ.get("SM_TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgresql"):
        base = "postgresql://sm_test:sm_test@127.0.0.1:5432/sm_test"
    url = make_url(base).set(database="sm_test_faults")
    rendered = url.render_as_string(hide_password=False)
    try:
        reset_database(rendered)
    except Exception as exc:  # noqa: BLE001 - no server, no database: skip or fail
        if "does not exist" not in str(exc) or os.geteuid() != 0:
            missing("postgres", f"PostgreSQL database sm_test_faults is not reachable: {exc}")
        # Its own database, so that the suite's others are not emptied under it.
        create = f"createdb -w -O {url.username} sm_test_faults"  # local socket, no password
        made = subprocess.run(
            ["su", "postgres", "-c", create],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        if made.returncode != 0:
            missing("postgres", f"cannot create database sm_test_faults: {made.stderr}")
        reset_database(rendered)
    return rendered


@pytest.fixture(scope="module")
def relay(database: str) -> Iterator[Relay]:
    url = make_url(database)
    relay = Relay(free_port(), (url.host or "127.0.0.1", url.port or 5432)).resume()
    yield relay
    relay.cut()


@pytest.fixture(scope="module")
def server(engine, relay: Relay, database: str, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("faultsdb")
    instance = Server(root, INSTANCE, PREFIX)
    url = make_url(database).set(host="127.0.0.1", port=relay.listen)
    instance.env["DATABASE_URL"] = url.render_as_string(hide_password=False)
    add_group(root, lines=TICKS, pause=0.05)
    instance.start()
    yield instance
    instance.kill()


def timed_get(session: requests.Session, url: str, **options) -> tuple[requests.Response, float]:
    moment = time.monotonic()
    response = session.get(url, timeout=30, **options)
    return response, time.monotonic() - moment


def test_database_restart_and_outage_fail_fast_then_recover(server: Server, relay: Relay, engine):
    session = login(server)
    ticker = script_ids(server, session)["ticker.py"]

    # A restart: every pooled connection dies; the next requests must not see it.
    relay.cut()
    relay.resume()
    for _ in range(3):
        assert session.get(server.url + "/api/script-groups", timeout=30).status_code == 200

    started = execute(server, session, ticker)
    assert started.status_code == 201, started.text
    run = started.json()
    wait_status(server, session, run["execution_id"], {"running"})

    relay.cut()
    try:
        outage_ends = time.monotonic() + OUTAGE
        api, took = timed_get(session, server.url + "/api/script-groups")
        assert api.status_code == 503, api.text[:500] + server.log()
        assert took < 5, f"the API answered after {took:.1f} s"
        assert "database" in api.json()["message"].lower(), api.json()
        page, took = timed_get(session, server.url + "/", headers={"Accept": "text/html"})
        assert page.status_code == 503, page.text[:500]
        assert took < 5, f"the page answered after {took:.1f} s"
        assert "database" in page.text.lower() and "Traceback" not in page.text
        refused = execute(server, session, ticker)
        assert refused.status_code == 503, refused.text[:500]
        health, _took = timed_get(requests.Session(), server.url + "/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        # The run ends while the database is away; the monitor records it once it is back.
        time.sleep(max(0.0, outage_ends - time.monotonic()))
    finally:
        relay.resume()

    wait_for(
        lambda: requests.get(server.url + "/health", timeout=10).status_code == 200,
        what="the manager's recovery",
    )
    assert session.get(server.url + "/api/script-groups", timeout=30).status_code == 200
    done = wait_status(server, session, run["execution_id"], {"completed", "failed", "lost"})
    assert done["status"] == "completed", done
    printed = [text for _seq, stream, text in run_log(server, run) if stream == "stdout"]
    assert printed == [f"tick {i:04d}" for i in range(TICKS)]
    stuck = session.get(server.url + "/api/sessions", timeout=30).json()
    assert not [s for s in stuck.get("sessions", []) if s.get("status") == "starting"], stuck
    again = execute(server, session, ticker)
    assert again.status_code == 201, again.text
    wait_status(server, session, again.json()["execution_id"], {"completed"})
