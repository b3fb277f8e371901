"""What the revocable-login check costs a request: prints figures, passes or fails nothing.

    python bench/accounts/bench_login_check.py [--requests 2000] [--rounds 3]

In-process (Flask's test client, no network), on a throwaway SQLite file (or DATABASE_URL, a
PostgreSQL database whose name contains "test": it is emptied). Measures a small JSON GET
anonymous and logged in (the login row is read on every request), and the check alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def per_request_us(client, path: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        response = client.get(path)
        assert response.status_code == 200, response.status_code
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import logging

    from manager import create_app
    from manager.auth import logins
    from manager.auth.service import create_user
    from manager.db import upgrade
    from manager.extensions import db
    from tests.conftest import reset_database

    tmp = Path(tempfile.mkdtemp(prefix="sm-bench-logins-"))
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
    reset_database(url)
    upgrade(url)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-bench-secret-key",
            "SQLALCHEMY_DATABASE_URI": url,
            "SM_DATA_DIR": str(tmp / "data"),
            "SM_LOG_DIR": str(tmp / "logs"),
            "SM_WATCH_SCRIPTS": False,
        }
    )
    logging.getLogger("scriptsmanager.access").setLevel(logging.WARNING)
    with app.app_context():
        user = create_user(
            db.session, {"username": "bench", "password": "bench-password", "user_level": "viewer"}
        )
        db.session.commit()
        user_id = user.id
    anonymous = app.test_client()
    member = app.test_client()
    assert (
        member.post(
            "/api/auth/login", json={"username": "bench", "password": "bench-password"}
        ).status_code
        == 200
    )
    with member.session_transaction() as cookie:
        login_id = cookie[logins.SESSION_KEY]

    path = "/api/i18n/languages"
    rows = {"anonymous GET": [], "logged-in GET": [], "check alone": []}
    for _ in range(args.rounds):
        rows["anonymous GET"].append(per_request_us(anonymous, path, args.requests))
        rows["logged-in GET"].append(per_request_us(member, path, args.requests))
        with app.app_context():
            start = time.perf_counter()
            for _ in range(args.requests):
                logins.check_and_touch(db.session, login_id, user_id)
            rows["check alone"].append((time.perf_counter() - start) / args.requests * 1e6)
            db.session.rollback()
    engine = url.split(":", 1)[0]
    print(f"{engine}, {args.requests} requests x {args.rounds} rounds (best, median) in µs")
    for name, values in rows.items():
        print(f"  {name:15s} {min(values):8.0f} {statistics.median(values):8.0f}")


if __name__ == "__main__":
    main()
