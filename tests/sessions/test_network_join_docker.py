"""A session with a network is started off it and joined to it right after (the engine's network
set-up then runs beside the runner's Python start): its script still runs on its network, from
its first line, and a failed join leaves nothing behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests
from docker.models.containers import ContainerCollection

from manager.sessions.backend import BackendError, ExitStatus
from manager.sessions.capture import NETWORK_READY_FILE
from tests.sessions.session_support import TEST_BRIDGES, SessionFactory, docker_backend
from tests.sessions.test_address_announce_docker import wait_neighbour

# At its first line the script reports the interfaces it has a route on (as the kernel says).
ROUTES = """
with open("/proc/net/route") as table:
    rows = [line.split() for line in table.read().splitlines()[1:]]
print("interfaces:", sorted({row[0] for row in rows}))
print("default route:", any(row[1] == "00000000" for row in rows))
"""
PAGE = (
    ROUTES
    + """
@app.route("/")
def index():
    return "on my network"
"""
)


@pytest.fixture
def factory(docker_client: Any, env_image: str, tmp_path: Path) -> Iterator[SessionFactory]:
    backend = docker_backend(docker_client, tmp_path / "capture")
    sessions = SessionFactory(backend, env_image, tmp_path / "runs")
    yield sessions
    for started in sessions.started:
        backend.remove(started.handle)


def _page(session: Any) -> str:
    """The session's page, once its runner serves (connections are refused until then)."""
    host, port = session.target()
    deadline = time.monotonic() + 20
    while True:
        try:
            return requests.get(f"http://{host}:{port}/", timeout=2).text
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the runner never answered"
            time.sleep(0.1)


def _capture(factory: SessionFactory, execution_uuid: str) -> Path:
    capture_dir = factory.backend.capture_dir
    assert capture_dir is not None
    return capture_dir / execution_uuid


@pytest.mark.docker
def test_an_interactive_script_runs_on_its_network_from_its_first_line(
    factory: SessionFactory, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The join is held back a second here: the runner has long imported Flask by then, and
    its script still waits for it."""
    api = factory.backend.client.api
    join = api.connect_container_to_network

    def slow_join(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        return join(*args, **kwargs)

    monkeypatch.setattr(api, "connect_container_to_network", slow_join)
    session = factory.start(PAGE, interactive=True)
    assert _page(session) == "on my network"
    assert "interfaces: ['eth0']" in session.text()
    state = session.handle.state
    container = docker_client.containers.get(state["container_id"])
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [state["network"]]
    assert (_capture(factory, session.handle.execution_uuid) / NETWORK_READY_FILE).exists()


@pytest.mark.docker
def test_a_batch_script_with_egress_has_its_route_out_at_its_first_line(
    factory: SessionFactory,
) -> None:
    session = factory.start(ROUTES, network="egress")
    assert session.wait() == ExitStatus(0)
    out = session.text()
    assert "interfaces: ['eth0']" in out and "default route: True" in out


@pytest.mark.docker
def test_an_engine_that_will_not_detach_starts_the_session_on_its_network(
    factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise docker.errors.APIError("not on this engine")

    monkeypatch.setattr(factory.backend.client.api, "disconnect_container_from_network", refuse)
    session = factory.start(PAGE, interactive=True)
    assert _page(session) == "on my network"
    assert "interfaces: ['eth0']" in session.text()


@pytest.mark.docker
def test_a_failed_join_is_a_failed_start_that_leaves_nothing(
    factory: SessionFactory, monkeypatch: pytest.MonkeyPatch, docker_client: Any
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise docker.errors.APIError("the network is full")

    created: list[Any] = []
    create = ContainerCollection.create

    def recording_create(self: ContainerCollection, *args: Any, **kwargs: Any) -> Any:
        created.append(create(self, *args, **kwargs))
        return created[-1]

    monkeypatch.setattr(ContainerCollection, "create", recording_create)
    monkeypatch.setattr(factory.backend.client.api, "connect_container_to_network", refuse)
    with pytest.raises(BackendError) as caught:
        factory.start(PAGE, interactive=True)
    assert caught.value.message == "The session could not be started."
    assert "the network is full" in caught.value.detail
    assert len(created) == 1
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(created[0].id)
    assert list((factory.backend.capture_dir or Path("/nonexistent")).glob("*")) == []


@pytest.mark.docker
def test_a_joined_session_announces_its_address_on_its_bridge(
    factory: SessionFactory, docker_client: Any
) -> None:
    """The capture announces the address as the container starts: off its network, nothing goes
    out then, so the runner announces it once joined. The host knows where the address is
    without having sent it anything (see test_address_announce_docker.py)."""
    session = factory.start(PAGE, interactive=True)
    container = docker_client.containers.get(session.handle.state["container_id"])
    settings = container.attrs["NetworkSettings"]["Networks"][session.handle.state["network"]]
    bridge = f"{TEST_BRIDGES}-int"
    assert wait_neighbour(settings["IPAddress"], bridge, timeout=15) == settings["MacAddress"]
