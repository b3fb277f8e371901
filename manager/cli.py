"""The ``scriptsmanager`` command: serve, init-db, create-admin, create-token, discover."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from manager.settings import ConfigError, load_settings

SECRET_KEY_FILE = ".secret_key"  # in the data folder; `make run` writes it (see Makefile)


def stored_secret_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The key `make run` keeps in ``<SM_DATA_DIR>/.secret_key`` when SECRET_KEY is not set.

    So that ``scriptsmanager create-admin`` and the other commands, run by hand next to
    ``make run``, sign with the same key. None when SECRET_KEY is set or there is no such file.
    """
    env = os.environ if environ is None else environ
    if env.get("SECRET_KEY"):
        return None
    path = Path(load_settings(env)["SM_DATA_DIR"]) / SECRET_KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None


def _app(**overrides: Any):
    from manager import create_app

    key = stored_secret_key()
    if key:
        overrides.setdefault("SECRET_KEY", key)
    return create_app(overrides or None)


def init_db(app: Any) -> None:
    from manager.db import upgrade
    from manager.extensions import db
    from manager.sessions.layout import migrate_layout

    upgrade(app.config["SQLALCHEMY_DATABASE_URI"])
    # Workspaces and logs of older versions were named after usernames: move them to ids.
    with app.app_context():
        report = migrate_layout(db.session, app.config["SM_DATA_DIR"], app.config["SM_LOG_DIR"])
        db.session.remove()
    if report.workspaces_moved or report.workspaces_unclaimed or report.logs_moved:
        print(f"Workspaces and logs: {report.summary()}", flush=True)


def cmd_init_db(args: argparse.Namespace) -> int:
    app = _app()
    init_db(app)
    print(f"Database ready: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}")
    return 0


def ensure_admin(app: Any) -> None:
    """Create the first admin if none exists; print a generated password once."""
    from manager.auth.service import ensure_first_admin
    from manager.extensions import db

    username = app.config["SM_ADMIN_USERNAME"]
    with app.app_context():
        generated = ensure_first_admin(db.session, username, app.config.get("SM_ADMIN_PASSWORD"))
        db.session.commit()
    if generated:
        bar = "=" * 64
        print(
            f"{bar}\nFirst admin created.\n  username: {username}\n  password: {generated}\n"
            "This password is shown only once. Change it after logging in: click your name\n"
            f"(top right) to open My account.\n{bar}",
            flush=True,
        )


def cmd_create_admin(args: argparse.Namespace) -> int:
    from manager.auth.service import AccountError, create_user
    from manager.extensions import db

    app = _app()
    init_db(app)
    with app.app_context():
        try:
            create_user(
                db.session,
                {
                    "username": args.username,
                    "password": args.password,
                    "email": args.email or f"{args.username}@localhost",
                    "user_level": "admin",
                },
            )
        except AccountError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        db.session.commit()
    print(f"Admin {args.username!r} created.")
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from manager.auth.service import create_token
    from manager.extensions import db
    from manager.models import User

    app = _app()
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == args.username)).scalar()
        if user is None or not user.is_active:
            print(f"error: no active user named {args.username!r}", file=sys.stderr)
            return 2
        _, plain = create_token(db.session, user, args.name or "cli")
        db.session.commit()
    print(plain)
    return 0


def discover(app: Any) -> Any:
    """Scripts from disk, and the environments' image states from the engine."""
    from manager.catalog_app import run_discovery
    from manager.extensions import db

    with app.app_context():
        report = run_discovery(app)
        runtime = app.extensions.get("sm_sessions")
        if runtime is not None:
            try:
                runtime.environments.refresh(db.session)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - no engine: the admin page says so later
                db.session.rollback()
                print(f"environments not refreshed: {exc}", file=sys.stderr)
        return report


def cmd_discover(args: argparse.Namespace) -> int:
    app = _app()
    report = discover(app)
    print(report.summary() if hasattr(report, "summary") else report)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from manager.server import serve

    app = _app()
    init_db(app)
    discover(app)
    ensure_admin(app)
    host = args.host or app.config["SM_HOST"]
    port = args.port or app.config["SM_PORT"]
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::1", "::") else host
    print(f"ScriptsManager on http://{shown}:{port}/  (Ctrl+C stops it)", flush=True)
    serve(host, port)
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    """Build the base and environment images that are missing, printing progress."""
    from manager.sessions.environments import (
        Environments,
        EnvPaths,
        docker_client,
        ensure_base_image,
        resolve_base_image,
    )

    app = _app()
    client = docker_client()
    if client is None:
        print(
            "The container engine is not reachable: no image built. Scripts cannot run until "
            "Docker is running (see README).",
            file=sys.stderr,
        )
        return 0 if args.if_engine else 1
    config = app.config
    base = resolve_base_image(config["SM_BASE_IMAGE"], client, allow_pull=True)
    envs = Environments(
        EnvPaths(
            envs_dir=Path(config["SM_CONDA_ENVS_DIR"]),
            runner_dir=Path(config["SM_RUNNER_DIR"]),
            wheelhouse=Path(config["SM_WHEELHOUSE_DIR"]),
            base_image=base,
        ),
        client_factory=lambda: client,
    )
    if args.action == "base":
        ensure_base_image(base, client, print)
        print(base)
        return 0
    names = [args.env] if args.env else envs.spec_names()
    failed = 0
    for name in names:
        print(f"== environment {name}", flush=True)
        build = envs.build(name, wait=True, echo=lambda line: print(f"   {line}", flush=True))
        failed += build.state != "built"
    return 1 if failed else 0


def api_reference(app: Any) -> list[tuple[str, str, str]]:
    """Every JSON endpoint as (methods, path, the first line of its view's docstring), sorted."""
    rows = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        methods = ",".join(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
        doc = (app.view_functions[rule.endpoint].__doc__ or "").strip()
        rows.append((methods, rule.rule, doc.splitlines()[0] if doc else ""))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def cmd_api(args: argparse.Namespace) -> int:
    """Print the API reference: method, path and what each endpoint does."""
    app = _app()
    rows = api_reference(app)
    width = max(len(methods) for methods, _, _ in rows)
    path_width = max(len(path) for _, path, _ in rows)
    for methods, path, doc in rows:
        print(f"{methods:<{width}}  {path:<{path_width}}  {doc}".rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scriptsmanager", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, discover, create the first admin, serve")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("init-db", help="create or upgrade the database").set_defaults(func=cmd_init_db)
    admin = sub.add_parser("create-admin", help="create an admin account")
    admin.add_argument("--username", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--email")
    admin.set_defaults(func=cmd_create_admin)
    token = sub.add_parser("create-token", help="print a new API token for a user")
    token.add_argument("username")
    token.add_argument("--name")
    token.set_defaults(func=cmd_create_token)
    sub.add_parser("discover", help="scan script groups now").set_defaults(func=cmd_discover)
    sub.add_parser("api", help="print the JSON API reference").set_defaults(func=cmd_api)
    images = sub.add_parser("images", help="build runner images (one per conda-envs/NAME.yml)")
    images.add_argument("action", choices=["build", "base"])
    images.add_argument("--env", help="only this environment")
    images.add_argument(
        "--if-engine",
        action="store_true",
        help="succeed with a warning when no container engine is reachable",
    )
    images.set_defaults(func=cmd_images)
    from manager.backup.cli import add_commands as add_backup_commands

    add_backup_commands(sub, _app)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        if "SECRET_KEY" in str(exc):
            print(
                f"  (`make run` keeps one in <SM_DATA_DIR>/{SECRET_KEY_FILE}, which this command"
                " reads when it exists: run it from the same folder, with the same SM_DATA_DIR)",
                file=sys.stderr,
            )
        return 2


if __name__ == "__main__":
    sys.exit(main())
