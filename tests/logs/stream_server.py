"""The manager as the Socket.IO tests and benchmarks run it: real gunicorn gevent worker, real
app (pumps, monitor, Socket.IO, proxy), sessions on the FakeBackend driven over HTTP.

``SM_STREAM_TEST_CONFIG`` names a JSON file: ``config`` (app overrides) and ``users``
(username, level). Test-only routes: ``GET /_test/emit?execution_id=&count=&start=&rate=
&stderr_every=&timed=&pad=`` prints ``line <n>`` (or ``<n> <send time>`` when ``timed``; ``pad``
characters more) at ``rate`` lines/s (0: at once) in the background;
``GET /_test/finish?execution_id=&exit_code=``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from flask import Flask, jsonify, request

from manager import create_app
from manager.auth.service import create_user
from manager.catalog_app import run_discovery
from manager.db import upgrade
from manager.extensions import db
from manager.sessions.fake import FakeBackend, FakeScript

PASSWORD = "password123"


def emit_lines(fake: FakeBackend, run_id: str, args: dict[str, Any]) -> None:
    """Print ``count`` numbered lines, ``rate`` a second (0: as fast as possible)."""
    count, start = int(args.get("count", 100)), int(args.get("start", 1))
    rate = float(args.get("rate", 0))
    stderr_every = int(args.get("stderr_every", 0))
    timed = args.get("timed") == "1"
    pad = " " + "x" * int(args["pad"]) if args.get("pad") else ""
    began = time.time()
    for index in range(count):
        n = start + index
        if rate:
            due = began + index / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        text = f"{n} {time.time():.6f}" if timed else f"line {n}{pad}"
        stream = "stderr" if stderr_every and n % stderr_every == 0 else "stdout"
        fake.emit(run_id, text, stream)


def build(settings: dict[str, Any]) -> Flask:
    upgrade(settings["config"]["SQLALCHEMY_DATABASE_URI"])
    fake = FakeBackend(FakeScript(exit_code=None))
    app = create_app({**settings["config"], "SM_TEST_BACKEND": fake, "SM_START_BACKGROUND": True})
    run_discovery(app)
    app.extensions["sm_sessions"].monitor.health_check = lambda host, port: True
    with app.app_context():
        for spec in settings["users"]:
            create_user(
                db.session,
                {"username": spec["username"], "password": PASSWORD, "user_level": spec["level"]},
            )
        db.session.commit()

    @app.get("/_test/emit")
    def emit() -> Any:
        args = request.args.to_dict()
        threading.Thread(
            target=emit_lines, args=(fake, args["execution_id"], args), daemon=True
        ).start()
        return jsonify(ok=True)

    @app.get("/_test/finish")
    def finish() -> Any:
        fake.finish(request.args["execution_id"], int(request.args.get("exit_code", 0)))
        return jsonify(ok=True)

    @app.get("/_test/viewers")
    def viewers() -> Any:
        live = app.extensions["sm_live_logs"]
        return jsonify(count=live.viewer_count(request.args["execution_id"]))

    return app


def application() -> Flask:
    with open(os.environ["SM_STREAM_TEST_CONFIG"], encoding="utf-8") as config:
        return build(json.load(config))
