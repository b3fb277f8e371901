"""Run one ScriptsManager script inside its session container.

The runner reads the session context (a read-only JSON file), builds a Flask app, runs the script
with ``WORKSPACE_PATH``, ``PARAMETERS``, ``ENVIRONMENT`` and ``app`` in its globals, then either
exits with the script's exit code (a batch script) or serves the routes the script registered (an
interactive script). Entry point: ``python -m smrunner``.

The names below are imported on first use, not with the package: ``python -m smrunner`` first
starts the output capture (``smrunner.capture``), a long-lived process of every session that must
not carry Flask (about 15 MiB a session) for nothing.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (1.6 MiB) into the capture
if TYPE_CHECKING:
    from smrunner.app import ScriptFlask, create_app, user_routes
    from smrunner.context import ContextError, SessionContext, load_context
    from smrunner.execute import run_script
    from smrunner.main import main

_EXPORTS = {
    "ContextError": "smrunner.context",
    "ScriptFlask": "smrunner.app",
    "SessionContext": "smrunner.context",
    "create_app": "smrunner.app",
    "load_context": "smrunner.context",
    "main": "smrunner.main",
    "run_script": "smrunner.execute",
    "user_routes": "smrunner.app",
}

__all__ = [
    "ContextError",
    "ScriptFlask",
    "SessionContext",
    "create_app",
    "load_context",
    "main",
    "run_script",
    "user_routes",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smrunner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
