"""Fixtures of the schedule tests."""

from tests.support.personal import world  # noqa: F401
