"""The manager app as the proxy tests run it: real gunicorn, temp SQLite, a StaticResolver.

``SM_PROXY_TEST_CONFIG`` names a JSON file: ``config`` (app overrides), ``users``
(username, level, active), ``sessions`` (project, script, user, host, port, key, state) and
``output`` (a file this module writes: user ids and an API token for alice).
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, jsonify

from manager import create_app
from manager.auth.service import create_token, create_user
from manager.db import upgrade
from manager.extensions import db
from manager.proxy import ProxyTarget, StaticResolver, StaticSession

PASSWORD = "password123"


def build(settings: dict[str, Any]) -> Flask:
    upgrade(settings["config"]["SQLALCHEMY_DATABASE_URI"])
    app = create_app(settings["config"])
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    with app.app_context():
        for spec in settings["users"]:
            user = create_user(
                db.session,
                {"username": spec["username"], "password": PASSWORD, "user_level": spec["level"]},
            )
            db.session.flush()
            ids[spec["username"]] = user.id
            tokens[spec["username"]] = create_token(db.session, user, "proxy tests")[1]
        db.session.commit()
    if "sm_proxy" not in app.extensions:  # until web.py installs the proxy itself
        from manager.proxy import init_app

        init_app(app)
    resolver = StaticResolver(
        StaticSession(
            s["project"],
            s["script"],
            ids[s["user"]],
            ProxyTarget(s["host"], s["port"], s["key"]),
            s.get("state", "running"),
        )
        for s in settings["sessions"]
    )
    app.extensions["sm_proxy_resolver"] = resolver

    @app.get("/_test/touched")
    def touched():  # type: ignore[no-untyped-def]
        return jsonify(resolver.touched)

    with open(settings["output"], "w", encoding="utf-8") as out:
        json.dump({"ids": ids, "tokens": tokens}, out)
    return app


def load() -> Flask:
    with open(os.environ["SM_PROXY_TEST_CONFIG"], encoding="utf-8") as config:
        return build(json.load(config))


app = load() if "SM_PROXY_TEST_CONFIG" in os.environ else None
