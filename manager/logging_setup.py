"""System, access and audit log files under SM_LOG_DIR."""

from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# (logger name, relative file, level); "scriptsmanager" feeds two files by level.
FILES = (
    ("scriptsmanager", "system/application.log", logging.INFO),
    ("scriptsmanager", "system/error.log", logging.ERROR),
    ("scriptsmanager.access", "system/access.log", logging.INFO),
    ("scriptsmanager.audit.user", "audit/user_actions.log", logging.INFO),
    ("scriptsmanager.audit.admin", "audit/admin_actions.log", logging.INFO),
)
SEPARATE = ("scriptsmanager.access", "scriptsmanager.audit.user", "scriptsmanager.audit.admin")


def configure_logging(log_dir: str) -> None:
    """Send the application's loggers to their files under ``log_dir``.

    Re-running it (a second app in tests) replaces our handlers instead of stacking them.
    """
    root = Path(log_dir)
    for name in {entry[0] for entry in FILES}:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, "_sm_handler", False):
                logger.removeHandler(handler)
                handler.close()
        logger.setLevel(logging.INFO)
    for name, relative, level in FILES:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._sm_handler = True  # type: ignore[attr-defined]
        logging.getLogger(name).addHandler(handler)
    for name in SEPARATE:
        logging.getLogger(name).propagate = False
