"""The Docker fixtures of the session tests (engine, env image, backend), reused here."""

from tests.sessions.conftest import (  # noqa: F401 - fixtures and the report hook
    backend,
    docker_client,
    env_image,
    pytest_runtest_makereport,
)
