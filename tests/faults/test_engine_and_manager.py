"""Faults on real parts: the manager killed mid-run, the Docker engine going away mid-run, a
burst of executes past the server-wide cap, an image deleted under a running manager.

The machine's Docker engine is shared, so these tests never restart it. "The engine restarted"
is what the manager sees of it: the manager talks to the engine through a relay this module
controls (``DOCKER_HOST=unix://<relay>``, see ``relay.py``); cutting the relay resets every
connection and refuses new ones, as a stopped engine does, and the session's container is
removed from outside meanwhile (a restart without live-restore loses the containers). Then the
relay listens again, as the restarted engine would.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import missing
from tests.faults.relay import Relay
from tests.faults.support import add_group, execute, run_log, wait_for
from tests.support.serve import REPO, Server, docker_engine, login, script_ids, wait_status

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-faults-{RUN}"
PREFIX = f"smtest-faults-{RUN}"
CAP = 4  # SM_MAX_CONCURRENT_SESSIONS of this module's server
TICKS = 150
START_TIMEOUT = 4  # SM_SESSION_START_TIMEOUT of this module's server

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def relay(tmp_path_factory) -> Iterator[Relay]:
    # A short path: unix socket paths are limited to ~100 bytes.
    path = Path("/tmp") / f"sm-faults-docker-{RUN}.sock"
    relay = Relay(str(path), "/var/run/docker.sock").resume()
    yield relay
    relay.cut()


@pytest.fixture(scope="module")
def envs_dir(tmp_path_factory, engine) -> Iterator[Path]:
    """The shipped environment specs plus ``faultenv``, an environment whose image this module
    creates (a tag of the ``base`` one) and deletes."""
    folder = tmp_path_factory.mktemp("envs")
    for spec in (REPO / "conda-envs").glob("*.yml"):
        shutil.copy(spec, folder)
    (folder / "faultenv.yml").write_text(
        (folder / "base.yml").read_text() + f"\n# fault tests {RUN}\n"
    )
    yield folder


@pytest.fixture(scope="module")
def server(engine, relay, envs_dir, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("faults")
    instance = Server(
        root,
        INSTANCE,
        PREFIX,
        DOCKER_HOST=relay.address,
        SM_CONDA_ENVS_DIR=str(envs_dir),
        SM_MAX_CONCURRENT_SESSIONS=str(CAP),
        SM_MAX_SESSIONS_PER_USER="100",
        SM_SESSION_START_TIMEOUT=str(START_TIMEOUT),
        SM_SCHEDULER_INTERVAL="0.5",
    )
    add_group(root, lines=TICKS, pause=0.04)
    images = root / "script_groups" / "faults_images"
    images.mkdir()
    (images / "metadata.json").write_text(
        '{"name": {"en": "Faults images"}, "required_level": "operator",'
        ' "conda_environment": "faultenv"}'
    )
    (images / "hello.py").write_text(
        '"""\nScriptsManager Metadata:\n@description: Hello\n@required_level: operator\n"""\n'
        'print("hello from faultenv")\n'
    )
    instance.start()
    yield instance
    instance.kill()


def containers(engine, run_id: str | None = None) -> list:
    label = f"io.scriptsmanager.execution={run_id}" if run_id else None
    filters = {"label": [f"io.scriptsmanager.instance={INSTANCE}"] + ([label] if label else [])}
    return engine.containers.list(all=True, filters=filters)


def test_manager_killed_mid_run_keeps_every_line_once(server: Server, engine):
    """SIGKILL while a batch run prints; the restarted manager re-adopts the run, its log has
    every line once and in order, and the container goes once the run ends."""
    session = login(server)
    ticker = script_ids(server, session)["ticker.py"]
    started = execute(server, session, ticker)
    assert started.status_code == 201, started.text
    run = started.json()
    wait_for(
        lambda: (
            len([r for r in run_log(server, run) if r[1] == "stdout"]) >= 20
            if list((server.root / "logs").rglob(f"*{run['execution_id']}*"))
            else None
        ),
        what="the first lines in the log",
    )
    server.kill()
    time.sleep(1.5)  # the script goes on printing while no manager is there
    server.start()
    session = login(server)
    done = wait_status(server, session, run["execution_id"], {"completed", "failed", "lost"})
    assert done["status"] == "completed", done
    records = run_log(server, run)
    printed = [text for _seq, stream, text in records if stream == "stdout"]
    assert printed == [f"tick {i:04d}" for i in range(TICKS)]
    seqs = [seq for seq, _stream, _text in records]
    assert seqs == sorted(set(seqs)), "record numbers must be unique and increasing"
    wait_for(lambda: not containers(engine, run["execution_id"]), what="removing the container")


def test_a_schedule_missed_while_the_manager_was_down_fires_once(server: Server, engine):
    """A schedule whose slots passed while the manager was dead fires once on restart, not
    once per missed slot, and a manager killed right after that fire does not fire it again."""
    session = login(server)
    ticker = script_ids(server, session)["ticker.py"]
    projects = session.get(f"{server.url}/api/projects").json()
    project = (projects.get("projects") if isinstance(projects, dict) else projects)[0]["id"]
    created = session.post(
        f"{server.url}/api/schedules",
        json={"script_id": ticker, "project_id": project, "cron": "0 3 * * *", "name": "nightly"},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()["id"]

    server.kill()
    # While it is down, three nightly slots pass.
    missed = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=3)
    database = sqlite3.connect(server.root / "data" / "scriptsmanager.db")
    with database:  # SQLAlchemy's way of writing a DateTime on SQLite
        database.execute(
            "UPDATE schedules SET next_run_at = ? WHERE id = ?",
            (missed.strftime("%Y-%m-%d %H:%M:%S.%f"), schedule),
        )
    database.close()
    server.start()
    session = login(server)

    def fired() -> dict | None:
        view = session.get(f"{server.url}/api/schedules/{schedule}").json()
        return view if view["run_count"] else None

    view = wait_for(fired, what="the missed schedule's run")
    server.kill()  # at once, while its run goes on
    server.start()
    session = login(server)
    time.sleep(2)  # several scheduler passes of the restarted manager
    again = session.get(f"{server.url}/api/schedules/{schedule}").json()
    assert again["run_count"] == 1, again
    assert again["last_execution_id"] == view["last_execution_id"]
    done = wait_status(server, session, view["last_execution_id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    printed = [t for _seq, stream, t in run_log(server, done) if stream == "stdout"]
    assert printed == [f"tick {i:04d}" for i in range(TICKS)]
    session.delete(f"{server.url}/api/schedules/{schedule}")


def test_engine_gone_mid_run_marks_the_run_lost_and_refuses_starts(
    server: Server, engine, relay: Relay
):
    """The engine goes away (relay cut) and its containers with it: starts fail at once with a
    clear 5xx and leave nothing "starting", the manager stays up; once the engine is back the
    lost run says so, and nothing is left behind."""
    session = login(server)
    ids = script_ids(server, session)
    started = execute(server, session, ids["sleeper.py"])
    assert started.status_code == 201, started.text
    run = started.json()
    wait_status(server, session, run["execution_id"], {"running"})

    relay.cut()
    try:
        for container in containers(engine, run["execution_id"]):
            container.remove(force=True)  # what a restart without live-restore does
        moment = time.monotonic()
        refused = execute(server, session, ids["ticker.py"])
        took = time.monotonic() - moment
        assert refused.status_code in (502, 503), refused.text
        assert took < 15, f"the refusal took {took:.1f} s"
        body = refused.json()
        assert "could not start" in body["message"], body
        assert requests.get(server.url + "/health", timeout=10).status_code == 200
        failed = session.get(f"{server.url}/api/executions/{body['execution_id']}").json()
        assert failed["status"] == "failed", failed
        time.sleep(1)  # a few monitor passes against the missing engine
        assert session.get(server.url + "/api/sessions").status_code == 200
    finally:
        relay.resume()

    lost = wait_status(server, session, run["execution_id"], {"lost", "failed", "completed"})
    assert lost["status"] == "lost", lost
    again = execute(server, session, ids["ticker.py"])
    assert again.status_code == 201, again.text
    wait_status(server, session, again.json()["execution_id"], {"completed"})
    wait_for(lambda: not containers(engine), what="no container left")


def test_a_session_that_never_becomes_ready_is_stopped_with_the_reason(server: Server, engine):
    """An interactive script that never answers its health check: after
    SM_SESSION_START_TIMEOUT the run is failed, its log says why, its container is gone."""
    session = login(server)
    never = script_ids(server, session)["never_ready.py"]
    opened = execute(server, session, never)
    assert opened.status_code == 201, opened.text
    run = opened.json()
    assert run["interactive"] is True, run
    done = wait_status(server, session, run["execution_id"], {"failed", "completed", "lost"})
    assert done["status"] == "failed", done
    notes = [text for _seq, stream, text in run_log(server, run) if stream == "debug"]
    assert any(
        f"did not answer within {START_TIMEOUT} s (SM_SESSION_START_TIMEOUT)" in n for n in notes
    ), notes
    wait_for(lambda: not containers(engine, run["execution_id"]), what="removing the container")


def test_a_burst_past_the_server_cap_starts_exactly_the_cap(server: Server, engine):
    """50 executes at once with room for CAP: CAP start, the rest get 429 with the reason,
    and no container exists beyond the CAP runs."""
    session = login(server)
    sleeper = script_ids(server, session)["sleeper.py"]
    wait_for(lambda: not containers(engine), what="a quiet engine before the burst")
    answers: list[requests.Response] = []
    barrier = threading.Barrier(50)

    def fire() -> None:
        mine = requests.Session()
        mine.cookies.update(session.cookies)
        mine.headers.update(session.headers)
        barrier.wait()
        answers.append(execute(server, mine, sleeper))

    threads = [threading.Thread(target=fire) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * CAP + [429] * (50 - CAP), codes
    refusal = next(a.json() for a in answers if a.status_code == 429)
    assert refusal["limit"] == "max_concurrent_sessions", refusal
    assert f"SM_MAX_CONCURRENT_SESSIONS={CAP}" in refusal["message"]
    runs = [a.json()["execution_id"] for a in answers if a.status_code == 201]
    for run_id in runs:
        wait_status(server, session, run_id, {"running"})
    assert sorted(c.labels["io.scriptsmanager.execution"] for c in containers(engine)) == sorted(
        runs
    ), "one container per accepted run, none for the refused ones"
    for run_id in runs:
        stopped = session.post(
            f"{server.url}/api/scripts/{sleeper}/stop", json={"execution_id": run_id}
        )
        assert stopped.status_code == 200, stopped.text
    for run_id in runs:
        wait_status(server, session, run_id, {"terminated"})
    wait_for(lambda: not containers(engine), what="removing the stopped containers")


def test_an_image_deleted_under_the_running_manager(server: Server, engine, envs_dir: Path):
    """A run of an environment whose image was deleted after the manager started fails at once
    with a message naming the image and what to do; the manager stays up."""
    from manager.sessions.images import env_image_tag

    runner = REPO / "runner-image"
    base = "scriptsmanager-base:bookworm"
    base_tag = env_image_tag("base", (envs_dir / "base.yml").read_text(), runner, base)
    fault_tag = env_image_tag("faultenv", (envs_dir / "faultenv.yml").read_text(), runner, base)
    if not any(base_tag in image.tags for image in engine.images.list(base_tag.split(":")[0])):
        missing("docker", f"{base_tag} is not built (scriptsmanager images build --env base)")
    engine.images.get(base_tag).tag(fault_tag)  # faultenv's image: a second name, cheap
    session = login(server)
    hello = script_ids(server, session)["hello.py"]
    try:
        first = execute(server, session, hello)
        assert first.status_code == 201, first.text
        done = wait_status(server, session, first.json()["execution_id"], {"completed", "failed"})
        assert done["status"] == "completed", done
    finally:
        engine.images.remove(fault_tag)  # only this name goes; base's image stays
    second = execute(server, session, hello)
    assert second.status_code == 503, second.text
    message = second.json()["message"]
    assert fault_tag in message and "not built" in message, message
    failed = session.get(f"{server.url}/api/executions/{second.json()['execution_id']}").json()
    assert failed["status"] == "failed", failed
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    assert not containers(engine, second.json()["execution_id"])
