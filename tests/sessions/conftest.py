"""Fixtures for the session tests: a real Docker engine, the real env image, throwaway networks.

Everything the Docker tests create carries this run's instance label and network prefix
(``smtest-<random>``, bridges ``smt<random>-int/-egr``), so the real session networks and the
real firewall rules are never touched, and a session-scoped fixture removes it all at the end.
When a test fails, the output of its containers is printed (pytest shows it with the failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from manager.sessions import images
from manager.sessions.docker import DockerBackend
from tests.conftest import missing
from tests.sessions.session_support import (
    ROOT,
    TEST_BRIDGES,
    TEST_INSTANCE,
    TEST_PREFIX,
    SessionFactory,
    remove_test_objects,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A Docker client; skips (or fails when REQUIRE_DOCKER=1) without a reachable engine.

    At the end, removes every container of this run's instance, its networks and firewall rules.
    """
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        missing("docker", f"Docker is not available: {exc}")
    remove_test_objects(client)
    yield client
    remove_test_objects(client)
    client.close()


@pytest.fixture(scope="session")
def env_image(docker_client: Any) -> str:
    """The ``base`` environment image (SM_BASE_IMAGE or the debootstrap base); built if missing.

    Building needs the base image; without it these tests skip (or fail with REQUIRE_DOCKER=1).
    """
    base = os.environ.get("SM_BASE_IMAGE", images.DEBOOTSTRAP_BASE_TAG)
    if not images.image_exists(docker_client, base):
        missing("docker", f"the base image {base} is not built (scriptsmanager images base)")
    default = Path.home() / ".cache" / "scriptsmanager" / "wheelhouse"
    wheelhouse = Path(os.environ.get("SM_WHEELHOUSE", default))
    spec = ROOT / "conda-envs" / "base.yml"
    runner = ROOT / "runner-image"
    return images.build_env_image("base", spec, runner, docker_client, base, wheelhouse)


@pytest.fixture(scope="session")
def backend(docker_client: Any) -> DockerBackend:
    return DockerBackend(
        docker_client,
        instance=TEST_INSTANCE,
        network_prefix=TEST_PREFIX,
        bridge_prefix=TEST_BRIDGES,
    )


@pytest.fixture
def sessions(
    request: pytest.FixtureRequest, backend: DockerBackend, env_image: str, tmp_path: Path
) -> Iterator[SessionFactory]:
    """Start sessions in a test; on failure print their output; always remove them."""
    factory = SessionFactory(backend, env_image, tmp_path)
    yield factory
    report = getattr(request.node, "report_call", None)
    for session in factory.started:
        if report is not None and report.failed:
            print(f"--- output of {session.handle.state['name']}:")
            for line in backend.logs(session.handle):
                print(f"{line.timestamp} {line.stream}: {line.text}")
        backend.remove(session.handle)
