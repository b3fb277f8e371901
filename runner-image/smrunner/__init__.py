"""Run one ScriptsManager script inside its session container.

The runner reads the session context (a read-only JSON file), builds a Flask app, runs the script
with ``WORKSPACE_PATH``, ``PARAMETERS``, ``ENVIRONMENT`` and ``app`` in its globals, then either
exits with the script's exit code (a batch script) or serves the routes the script registered (an
interactive script). Entry point: ``python -m smrunner``.
"""

from smrunner.app import ScriptFlask, create_app, user_routes
from smrunner.context import ContextError, SessionContext, load_context
from smrunner.execute import run_script
from smrunner.main import main

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
