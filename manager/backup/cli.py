"""``scriptsmanager backup create|list|delete|status|restore``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from manager.backup import restore, scheduler
from manager.backup.service import BackupError, BackupSettings, delete_backup, list_backups


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def run(args: argparse.Namespace, make_app: Callable[[], Any]) -> int:
    app = make_app()
    settings = BackupSettings.from_config(app.config)
    from manager.extensions import db

    with app.app_context():
        engine = db.engine
        try:
            return _dispatch(args, settings, engine)
        except BackupError as exc:
            print(f"backup: {exc.message}", file=sys.stderr)
            return 3 if exc.extra.get("needs_confirmation") else 1
        finally:
            db.session.remove()


def _dispatch(args: argparse.Namespace, settings: BackupSettings, engine: Any) -> int:
    action = args.backup_action
    if action == "create":
        result = scheduler.run_backup(engine, settings, reason="cli")
        if result is None:
            print("backup: another backup is running; try again when it is done", file=sys.stderr)
            return 1
        print(f"{result.backup.path} ({_size(result.backup.size_bytes)})")
        return 0
    if action == "list":
        for info in list_backups(settings):
            print(f"{info.date}  {info.file}  {_size(info.size_bytes)}")
        return 0
    if action == "delete":
        for name in delete_backup(settings, args.date):
            print(f"deleted {name}")
        return 0
    if action == "status":
        print(json.dumps(scheduler.status(engine, settings), indent=2, default=str))
        return 0
    if args.target:
        report = restore.restore_into_folder(settings, args.backup, Path(args.target).resolve())
    else:
        report = restore.restore_in_place(settings, args.backup, confirm=args.yes, engine=engine)
    print(f"restored {report.backup} {report.target}: {report.data_files} data files, "
          f"{report.log_files} log files, database {report.engine}")  # fmt: skip
    for note in report.notes:
        print(note)
    return 0


def add_commands(sub: Any, make_app: Callable[[], Any]) -> None:
    """Add the ``backup`` command to the ``scriptsmanager`` parser."""
    backup = sub.add_parser("backup", help="system backups: create, list, delete, status, restore")
    actions = backup.add_subparsers(dest="backup_action", required=True)
    actions.add_parser("create", help="back up the data folder, run logs and database now")
    actions.add_parser("list", help="list the backups, newest first")
    actions.add_parser("status", help="last and next backup, disk use (JSON)")
    delete = actions.add_parser("delete", help="delete the backups of one day")
    delete.add_argument("date", help="YYYY-MM-DD")
    restore_cmd = actions.add_parser(
        "restore", help="restore a backup in place, or into an empty folder with --target"
    )
    restore_cmd.add_argument("backup", help="a date (its newest backup), a file name or a path")
    restore_cmd.add_argument("--target", help="an empty folder to restore into (not in place)")
    restore_cmd.add_argument(
        "--yes", action="store_true", help="replace the live database (asked for in place)"
    )
    backup.set_defaults(func=lambda args: run(args, make_app))
