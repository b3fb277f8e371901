"""ScriptsManager: publish Python scripts, run each in its own container, from a browser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``config`` overrides settings read from the environment."""
    from manager import web

    return web.build(config)
