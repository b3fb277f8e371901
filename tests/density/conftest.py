"""The Docker fixtures of the session tests (engine, env image), reused here."""

from tests.sessions.conftest import (  # noqa: F401 - fixtures and the report hook
    docker_client,
    env_image,
    pytest_runtest_makereport,
)
