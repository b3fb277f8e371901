"""Connect the catalog (discovery, watcher) to the running app."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask

from manager.extensions import db

log = logging.getLogger("scriptsmanager")
_lock = threading.Lock()


def run_discovery(app: Flask, group_dir_name: str | None = None) -> Any:
    """Scan script groups into the database; safe to call from any thread."""
    from manager.catalog.discovery import discover

    with _lock, app.app_context():
        try:
            report = discover(
                db.session,
                app.config["SM_SCRIPT_GROUPS_DIR"],
                group_dir_name=group_dir_name,
                envs_dir=app.config["SM_CONDA_ENVS_DIR"],
            )
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("script discovery failed")
            raise
        log.info("discovery: %s", report.summary() if hasattr(report, "summary") else report)
        return report


def start_watcher(app: Flask) -> Any:
    """Watch the script groups folder and re-discover what changed (hot reload)."""
    from manager.catalog.watcher import CatalogWatcher

    def changed(group_dir_name: str | None) -> None:
        try:
            run_discovery(app, group_dir_name)
        except Exception:  # the watcher must survive one bad scan
            log.exception("hot reload of %s failed", group_dir_name or "all groups")

    watcher = CatalogWatcher(app.config["SM_SCRIPT_GROUPS_DIR"], changed)
    watcher.start()
    app.extensions["sm_catalog_watcher"] = watcher
    return watcher
