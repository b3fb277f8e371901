"""Execution logs: the store (files), the pump (container output → file, row, watchers), Socket.IO.

``init_app`` attaches the ``LogHub`` (``app.extensions["sm_logs"]``); ``stream.init_app`` the
Socket.IO handlers. Readers (viewer, search, export) use ``manager.logs.store`` only.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_app_context

from manager.logs.hub import LogHub, LogSettings

log = logging.getLogger("scriptsmanager")

__all__ = ["LogHub", "LogSettings", "current_hub", "init_app", "record_debug"]


def init_app(app: Flask) -> LogHub:
    """Attach the hub; its background loops run only where pumps run (the serving process)."""
    from manager.extensions import db

    with app.app_context():
        engine = db.engine
    hub = LogHub(LogSettings.from_config(app.config), engine)
    app.extensions["sm_logs"] = hub
    if hub.settings.live_pumps:
        hub.start()
    return hub


def current_hub() -> LogHub | None:
    """The app's hub, or None outside an app context (or before ``init_app``)."""
    if not has_app_context():
        return None
    found: Any = current_app.extensions.get("sm_logs")
    return found


def record_debug(execution: Any, message: str, moment: datetime) -> None:
    """Write a lifecycle event to the run's log file (and its watchers), when a hub is there."""
    hub = current_hub()
    if hub is None:
        return
    try:
        hub.debug(execution, message, moment)
    except OSError as exc:  # a full or broken disk must not stop the session's lifecycle
        log.error("log %s: cannot write %r: %s", execution.execution_uuid, message, exc)
