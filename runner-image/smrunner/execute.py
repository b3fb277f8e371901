"""Execute the script file with the session's context in its globals."""

from __future__ import annotations

import builtins
import copy
import sys
import types
from pathlib import Path
from typing import Any

from flask import Flask

from smrunner.context import SessionContext


def script_globals(app: Flask, context: SessionContext) -> dict[str, Any]:
    """Return the names injected into the script: the seed's four, nothing else."""
    return {
        "WORKSPACE_PATH": context.workspace_path,
        # Copies: the script may mutate them without touching the runner's context.
        "PARAMETERS": copy.deepcopy(context.parameters),
        "ENVIRONMENT": copy.deepcopy(context.environment),
        "app": app,
    }


def run_script(app: Flask, context: SessionContext) -> dict[str, Any]:
    """Run the script as the ``__main__`` module and return its globals.

    The script runs as Python would run it (``__name__ == "__main__"``, ``sys.argv[0]`` its path,
    its folder first on ``sys.path``) with the context's names predefined. The module stays
    ``sys.modules["__main__"]`` afterwards, so route functions, pickling and threads that look the
    module up keep working while the app serves. Raises whatever the script raises; OSError when
    the file cannot be read; SyntaxError when it does not compile.
    """
    path = Path(context.script_path)
    source = path.read_bytes()
    # dont_inherit: the runner's own __future__ imports must not leak into the script.
    code = compile(source, str(path), "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    namespace = module.__dict__
    namespace.update(__file__=str(path), __builtins__=builtins, __cached__=None)
    namespace.update(script_globals(app, context))
    sys.modules["__main__"] = module
    sys.argv = [str(path)]
    sys.path.insert(0, str(path.parent))
    exec(code, namespace)
    return namespace
