"""Fixtures for the documentation tests: the example catalog discovered, one user per level."""

from __future__ import annotations

import pytest

from tests.support.catalog import group_id, script_id


@pytest.fixture
def docs_app(ready_app, make_user):
    for level in ("viewer", "operator", "developer", "admin"):
        make_user(level, level)
    return ready_app


@pytest.fixture
def ids(docs_app) -> dict[str, int]:
    return {
        "csv": script_id(docs_app, "csv_summary.py"),
        "units": script_id(docs_app, "unit_converter.py"),
        "calc": script_id(docs_app, "calculator.py"),
        "data_group": group_id(docs_app, "data_processing"),
    }
