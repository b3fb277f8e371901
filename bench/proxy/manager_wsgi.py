"""The manager app for the benchmark: temp SQLite, one user, a fixed session to the upstream.

Configured by environment variables: SM_BENCH_DIR (a temp dir), SM_BENCH_UPSTREAM_PORT,
SM_BENCH_USERNAME and SM_BENCH_PASSWORD.
"""

from __future__ import annotations

import os
from pathlib import Path

from manager import create_app
from manager.auth.service import create_user
from manager.db import upgrade
from manager.extensions import db
from manager.proxy import ProxyTarget, StaticResolver, StaticSession


def build():  # type: ignore[no-untyped-def]
    root = Path(os.environ["SM_BENCH_DIR"])
    url = f"sqlite:///{root}/bench.db"
    upgrade(url)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "SQLALCHEMY_DATABASE_URI": url,
            "SM_DATA_DIR": str(root / "data"),
            "SM_LOG_DIR": str(root / "logs"),
            "SM_BACKUP_DIR": str(root / "backup"),
            "SM_WATCH_SCRIPTS": False,
            "SM_PROXY_AUTHZ": True,  # the "authz" way: nginx carries, the manager decides
        }
    )
    with app.app_context():
        user = create_user(
            db.session,
            {
                "username": os.environ["SM_BENCH_USERNAME"],
                "password": os.environ["SM_BENCH_PASSWORD"],
                "user_level": "operator",
            },
        )
        db.session.commit()
        user_id = user.id
    if "sm_proxy" not in app.extensions:  # until web.py installs the proxy itself
        from manager.proxy import init_app

        init_app(app)
    target = ProxyTarget("127.0.0.1", int(os.environ["SM_BENCH_UPSTREAM_PORT"]), "bench")
    app.extensions["sm_proxy_resolver"] = StaticResolver([StaticSession(1, 1, user_id, target)])
    return app


app = build()
