"""DockerBackend on the real engine, real env image and runner: runs, output, stop, re-adoption."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from manager.sessions.backend import (
    LABEL_EXECUTION,
    LABEL_INSTANCE,
    BackendError,
    ExitStatus,
    Handle,
    ImageMissing,
    Mount,
    SessionSpec,
)
from manager.sessions.docker import DockerBackend, container_options, parse_timestamp
from tests.sessions.session_support import TEST_BRIDGES, TEST_INSTANCE, TEST_PREFIX, SessionFactory

# --------------------------------------------------------------------------- without an engine


def _spec(**changes: Any) -> SessionSpec:
    base: dict[str, Any] = {
        "name": "sm-session-abc",
        "image": "scriptsmanager-env-base:abc",
        "execution_uuid": "abc",
        "labels": {LABEL_EXECUTION: "abc"},
        "mounts": (Mount("/host/ws", "/workspace", read_only=False),),
        "environment": {"SM_CONTEXT_FILE": "/run/sm/context.json"},
        "memory": "256m",
        "cpus": 0.5,
        "pids": 64,
        "tmpfs_size": "16m",
    }
    return SessionSpec(**{**base, **changes})


def test_container_options_harden_every_container() -> None:
    options = container_options(_spec(), network=None)
    assert options["user"] == "10001:10001"
    assert options["cap_drop"] == ["ALL"]
    assert options["security_opt"] == ["no-new-privileges"]
    assert options["read_only"] is True
    assert options["tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=16m"}
    assert options["init"] is True
    assert options["pids_limit"] == 64
    assert options["mem_limit"] == options["memswap_limit"] == "256m"
    assert (options["cpu_quota"], options["cpu_period"]) == (250_000, 500_000)
    assert "nano_cpus" not in options
    assert options["ipc_mode"] == "private"
    assert options["privileged"] is False
    assert options["auto_remove"] is False
    assert options["network_mode"] == "none"
    assert options["log_config"]["Config"]["max-size"] == "10m"
    assert "ports" not in options and "volumes" not in options
    [mount] = options["mounts"]
    assert (mount["Source"], mount["Target"], mount["ReadOnly"]) == (
        "/host/ws",
        "/workspace",
        False,
    )


def test_container_options_join_the_named_network() -> None:
    options = container_options(_spec(network="internal"), network="sm-sessions-internal")
    assert options["network"] == "sm-sessions-internal"
    assert "network_mode" not in options


@pytest.mark.parametrize("user", ["0:0", "root", "10001:0", "0:10001", ""])
def test_container_options_refuse_root(user: str) -> None:
    with pytest.raises(BackendError):
        container_options(_spec(user=user), network=None)


def test_parse_timestamp_keeps_nanoseconds() -> None:
    assert (
        parse_timestamp("2024-05-01T12:00:00.000000002Z")
        - parse_timestamp("2024-05-01T12:00:00.000000001Z")
        == 1
    )
    assert parse_timestamp("2024-05-01T12:00:00Z") == 1714564800 * 10**9
    assert parse_timestamp("2024-05-01T12:00:00.5Z") == 1714564800 * 10**9 + 500_000_000
    assert parse_timestamp("2024-05-01T14:00:00.5+02:00") == parse_timestamp(
        "2024-05-01T12:00:00.5Z"
    )


def test_an_unreachable_engine_gives_clear_errors_and_ping_never_raises(tmp_path: Path) -> None:
    import docker

    client = docker.DockerClient(base_url=f"unix://{tmp_path}/no.sock", version="1.41")
    backend = DockerBackend(client, instance=TEST_INSTANCE)
    health = backend.ping()
    assert health["status"] == "error" and health["error"]
    with pytest.raises(BackendError, match="engine is not reachable"):
        backend.start(_spec(network="internal"))
    with pytest.raises(BackendError, match="engine is not reachable"):
        backend.poll(Handle("x", {"container_id": "abc"}))
    client.close()


# --------------------------------------------------------------------------- batch runs


@pytest.mark.docker
def test_batch_run_exit_zero_with_output_apart_and_in_order(sessions: SessionFactory) -> None:
    script = (
        "import sys, time\n"
        "for i in range(3):\n"
        "    print(f'out {i}')\n"
        "    time.sleep(0.02)\n"
        "    print(f'err {i}', file=sys.stderr)\n"
        "    time.sleep(0.02)\n"
    )
    session = sessions.start(script)
    assert session.wait() == ExitStatus(0)
    lines = [(line.stream, line.text) for line in session.lines()]
    assert lines == [
        ("stdout", "out 0"), ("stderr", "err 0"),
        ("stdout", "out 1"), ("stderr", "err 1"),
        ("stdout", "out 2"), ("stderr", "err 2"),
    ]  # fmt: skip
    stamps = [parse_timestamp(line.timestamp or "") for line in session.lines()]
    assert stamps == sorted(stamps)


@pytest.mark.docker
def test_batch_run_exit_code_of_the_script(sessions: SessionFactory) -> None:
    session = sessions.start("import sys\nprint('partial work')\nsys.exit(3)\n")
    assert session.wait() == ExitStatus(3)
    assert session.text() == "partial work"


@pytest.mark.docker
def test_batch_run_exception_gives_traceback_and_exit_1(sessions: SessionFactory) -> None:
    session = sessions.start("def work():\n    raise ValueError('boom')\nwork()\n")
    assert session.wait().exit_code == 1
    errors = session.text("stderr")
    assert "Traceback (most recent call last)" in errors
    assert 'File "/scripts/script.py", line 3' in errors
    assert errors.splitlines()[-1] == "ValueError: boom"
    assert session.text("stdout") == ""


@pytest.mark.docker
def test_parameters_arrive_typed(sessions: SessionFactory) -> None:
    parameters = {"count": 4, "ratio": 0.5, "dry_run": True, "name": "P-101", "tags": ["a", "b"]}
    script = (
        "import json\n"
        "print(json.dumps({k: [type(v).__name__, v] for k, v in PARAMETERS.items()}))\n"
        "print(ENVIRONMENT['USER_ID'], ENVIRONMENT['PROJECT_NAME'], WORKSPACE_PATH)\n"
    )
    session = sessions.start(script, parameters=parameters)
    assert session.wait() == ExitStatus(0)
    typed, environment = session.text().splitlines()
    assert json.loads(typed) == {
        "count": ["int", 4],
        "ratio": ["float", 0.5],
        "dry_run": ["bool", True],
        "name": ["str", "P-101"],
        "tags": ["list", ["a", "b"]],
    }
    assert environment == "alice Pumps /workspace"


@pytest.mark.docker
def test_logs_resume_after_a_timestamp_without_doubles(
    sessions: SessionFactory, backend: DockerBackend
) -> None:
    session = sessions.start("for i in range(200):\n    print('line', i)\n")
    session.wait()
    lines = session.lines()
    assert [line.text for line in lines] == [f"line {i}" for i in range(200)]
    for cut in (0, 57, 198, 199):
        rest = list(backend.logs(session.handle, since=lines[cut].timestamp))
        assert rest == lines[cut + 1 :]


@pytest.mark.docker
def test_logs_follow_until_the_session_ends(
    sessions: SessionFactory, backend: DockerBackend
) -> None:
    script = "import time\nfor i in range(5):\n    print('tick', i)\n    time.sleep(0.1)\n"
    session = sessions.start(script)
    started = time.monotonic()
    texts = [line.text for line in backend.logs(session.handle, follow=True)]
    assert texts == [f"tick {i}" for i in range(5)]
    assert time.monotonic() - started < 10
    assert backend.poll(session.handle) == ExitStatus(0)


@pytest.mark.docker
def test_a_long_line_comes_back_joined_up_to_the_line_cap(sessions: SessionFactory) -> None:
    # The engine splits it into 16 KiB frames; they are joined up to SM_LOG_MAX_LINE (16 KiB).
    session = sessions.start("print('x' * 40000)\nprint('end')\n")
    session.wait()
    texts = [line.text for line in session.lines("stdout")]
    assert texts[0] == "x" * 16384 + " [line cut: 40000 bytes, SM_LOG_MAX_LINE=16384]"
    assert texts[1:] == ["end"]


# --------------------------------------------------------------------------- interactive


INTERACTIVE = (
    "from flask import url_for\n"
    "@app.route('/')\n"
    "def index():\n"
    "    return f\"hello {ENVIRONMENT['USER_ID']} <a href='{url_for('index')}'>me</a>\"\n"
)


@pytest.mark.docker
def test_interactive_session_is_reachable_from_the_host_and_stops_gracefully(
    sessions: SessionFactory, backend: DockerBackend
) -> None:
    session = sessions.start(INTERACTIVE, interactive=True)
    host, port = session.target()
    assert port == 8080
    deadline = time.monotonic() + 20
    while True:
        try:
            health = requests.get(f"http://{host}:{port}/_sm/health", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the runner never answered"
            time.sleep(0.1)
    assert health.json() == {"status": "ok"}
    page = requests.get(f"http://{host}:{port}/", timeout=2)
    assert page.text == "hello alice <a href='/project/1/script/2/user/3/'>me</a>"
    assert backend.poll(session.handle) is None

    started = time.monotonic()
    backend.stop(session.handle, timeout=5)
    assert time.monotonic() - started < 4, "the runner did not stop on SIGTERM"
    assert backend.poll(session.handle) == ExitStatus(0)
    assert backend.address(session.handle) is None
    assert "server stopped" in session.text("stderr")


@pytest.mark.docker
def test_restarted_manager_re_adopts_a_running_session(
    sessions: SessionFactory, docker_client: Any
) -> None:
    session = sessions.start(INTERACTIVE, interactive=True)
    address = session.target()
    stored = json.loads(json.dumps(session.backend.get_state(session.handle)))

    restarted = DockerBackend(
        docker_client,
        instance=TEST_INSTANCE,
        network_prefix=TEST_PREFIX,
        bridge_prefix=TEST_BRIDGES,
    )
    found = {handle.execution_uuid: handle for handle in restarted.list_sessions()}
    assert session.handle.execution_uuid in found
    adopted = found[session.handle.execution_uuid]
    assert adopted.state == stored

    again = restarted.load_state(session.handle.execution_uuid, stored)
    assert restarted.poll(again) is None
    assert restarted.address(again) is not None
    assert (restarted.address(again).host, 8080) == address  # type: ignore[union-attr]
    restarted.stop(again, now=True)
    assert restarted.poll(again) == ExitStatus(137)


@pytest.mark.docker
def test_other_instances_sessions_are_not_listed(
    sessions: SessionFactory, docker_client: Any
) -> None:
    session = sessions.start("print(1)\n")
    other = DockerBackend(docker_client, instance=f"{TEST_INSTANCE}-other")
    assert session.handle.execution_uuid not in {h.execution_uuid for h in other.list_sessions()}


# --------------------------------------------------------------------------- failures


@pytest.mark.docker
def test_missing_image_says_which_and_where_to_build_it(sessions: SessionFactory) -> None:
    with pytest.raises(ImageMissing) as caught:
        sessions.start("print(1)\n", image="scriptsmanager-env-nosuch:abc")
    assert caught.value.message == (
        "The image scriptsmanager-env-nosuch:abc is not built; an admin can build it under"
        " Admin → Environments."
    )


@pytest.mark.docker
def test_failed_start_leaves_no_container(
    backend: DockerBackend, env_image: str, docker_client: Any, tmp_path: Path
) -> None:
    execution = str(uuid.uuid4())
    spec = _spec(
        name=f"sm-session-{execution.replace('-', '')}",
        image=env_image,
        execution_uuid=execution,
        labels={LABEL_EXECUTION: execution, LABEL_INSTANCE: TEST_INSTANCE},
        mounts=(Mount(str(tmp_path / "does-not-exist"), "/workspace", read_only=False),),
    )
    with pytest.raises(BackendError) as caught:
        backend.start(spec)
    assert caught.value.message == "The session could not be created."
    assert "does-not-exist" in caught.value.detail
    assert docker_client.containers.list(all=True, filters={"name": spec.name}) == []


@pytest.mark.docker
def test_vanished_session_is_gone_and_stop_remove_are_quiet(
    sessions: SessionFactory, backend: DockerBackend
) -> None:
    session = sessions.start("import time\ntime.sleep(30)\n")
    backend.remove(session.handle)  # force-removes the running container
    assert backend.poll(session.handle) == ExitStatus(None, error="gone")
    assert backend.address(session.handle) is None
    assert list(backend.logs(session.handle)) == []
    assert backend.stats(session.handle) == {}
    backend.stop(session.handle)
    backend.stop(session.handle, now=True)
    backend.remove(session.handle)
    ghost = Handle("nope", {"container_id": "0" * 64})
    assert backend.poll(ghost) == ExitStatus(None, error="gone")


@pytest.mark.docker
def test_stats_and_ping(sessions: SessionFactory, backend: DockerBackend) -> None:
    session = sessions.start("import time\nx = b'y' * (20 * 1024 * 1024)\ntime.sleep(30)\n")
    deadline = time.monotonic() + 10
    while backend.stats(session.handle).get("memory_bytes", 0) < 20 * 1024 * 1024:
        assert time.monotonic() < deadline, backend.stats(session.handle)
        time.sleep(0.1)
    assert backend.stats(session.handle)["memory_limit_bytes"] == 128 * 1024 * 1024
    backend.stop(session.handle, now=True)
    health = backend.ping()
    assert health["status"] == "ok"
    assert health["version"]
    assert health["isolation"] == "full"
