"""What discovery reports counts scripts and groups apart (the shipped examples: 6 in 3)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.orm import Session

from manager.catalog.discovery import discover

GROUPS = Path(__file__).resolve().parents[2] / "script_groups"


def test_summary_counts_scripts_and_groups_apart(session: Session, tmp_path: Path) -> None:
    groups = tmp_path / "groups"
    shutil.copytree(GROUPS, groups)
    scripts = sorted(groups.glob("*/[!_]*.py"))
    folders = {path.parent for path in scripts}
    first = discover(session, groups).summary()
    expected = f"{len(scripts)} scripts, {len(folders)} groups added, 0 reactivated"
    assert first.startswith(expected), first

    scripts[0].unlink()
    again = discover(session, groups).summary()
    assert again.startswith("0 added, 0 reactivated, ") and "1 script deactivated" in again
