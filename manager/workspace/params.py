"""``file`` parameters at run time: the path must name a regular file of the run's workspace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from manager.catalog.schema import WORKSPACE_MOUNT
from manager.workspace import safefs


def check_file_parameters(
    workspace: str | Path, definitions: list[dict[str, Any]], values: dict[str, Any]
) -> dict[str, str]:
    """Errors by parameter name for ``file`` values that are not a regular file in ``workspace``.

    ``values`` are validated ones (``/workspace/...`` paths). The session service calls this
    before a run starts, so a missing upload is a 400, not a script failing on a missing file.
    """
    errors: dict[str, str] = {}
    wanted = [d["name"] for d in definitions if d.get("type") == "file" and values.get(d["name"])]
    if not wanted:
        return errors
    try:
        root_fd = safefs.open_root(workspace)
    except OSError:
        root_fd = None
    try:
        for name in wanted:
            relative = str(values[name])[len(WORKSPACE_MOUNT) + 1 :]
            try:
                if root_fd is None:
                    raise FileNotFoundError
                parts = safefs.split_path(relative)
                with safefs.parent_of(root_fd, parts) as parent:
                    fd, _ = safefs.open_regular(parent, parts[-1], relative)
                os.close(fd)
            except FileNotFoundError:
                errors[name] = f"{relative} is not in this project's workspace; upload it again"
            except (OSError, safefs.UnsafePath) as exc:
                errors[name] = getattr(exc, "message", None) or f"{relative} cannot be read"
    finally:
        if root_fd is not None:
            os.close(root_fd)
    return errors
