"""Fixtures of the tags, presets and dashboard tests."""

from tests.support.personal import world  # noqa: F401
