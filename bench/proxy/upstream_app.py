"""The benchmark's upstream: a Flask app behind ProxyFix, as a session container serves one."""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

SMALL = b"hello from the session\n"
BIG = bytes(range(256)) * 4096  # 1 MiB


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def small() -> Response:
        return Response(SMALL, mimetype="text/plain")

    @app.get("/big")
    def big() -> Response:
        return Response(BIG, mimetype="application/octet-stream")

    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1
    )
    return app


app = create_app()
