"""A multi-page Flask app standing in for a script's web interface behind the proxy.

Served by gunicorn (gthread) in the tests; ``UPSTREAM_ADDR`` is its own ``host:port``.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator

from flask import (
    Flask,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    stream_with_context,
    url_for,
)
from werkzeug.middleware.proxy_fix import ProxyFix

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "upstream_site")
BIG = bytes(range(256)) * 4096  # 1 MiB
STREAM_PARTS = 4
STREAM_PAUSE = 0.4


def create_app() -> Flask:
    app = Flask(__name__, template_folder=f"{SITE}/templates", static_folder=f"{SITE}/static")
    app.secret_key = "upstream-secret"
    items: list[dict] = [{"id": 1, "name": "first"}]

    @app.get("/")
    def index() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return render_template("index.html", visits=session["visits"])

    @app.route("/form", methods=["GET", "POST"])
    def form() -> Response | str:
        if request.method == "POST":
            session["name"] = request.form["name"]
            return redirect(url_for("thanks"))
        return render_template("form.html")

    @app.get("/thanks")
    def thanks() -> str:
        return render_template("thanks.html", name=session.get("name", "?"))

    @app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    @app.route("/echo/<path:rest>", methods=["GET", "POST"])
    def echo(rest: str = "") -> Response:
        body = request.get_data()
        return jsonify(
            method=request.method,
            path=request.path,
            full_path=request.full_path,
            script_root=request.script_root,
            url_root=request.url_root,
            url=request.url,
            remote_addr=request.remote_addr,
            args=request.args.to_dict(flat=False),
            headers={k: v for k, v in request.headers.items()},
            cookies=request.cookies.to_dict(),
            body_length=len(body),
            body_sha256=hashlib.sha256(body).hexdigest(),
            raw_uri=request.environ.get("RAW_URI", ""),
        )

    @app.post("/upload")
    def upload() -> Response:
        digest, total = hashlib.sha256(), 0
        while chunk := request.stream.read(65536):
            digest.update(chunk)
            total += len(chunk)
        return jsonify(length=total, sha256=digest.hexdigest())

    @app.get("/redirect/root")
    def redirect_root() -> Response:
        return redirect("/thanks")

    @app.get("/redirect/absolute")
    def redirect_absolute() -> Response:
        return redirect(f"http://{os.environ['UPSTREAM_ADDR']}/thanks?from=absolute")

    @app.get("/redirect/prefixed")
    def redirect_prefixed() -> Response:
        return redirect(url_for("thanks"))

    @app.get("/redirect/elsewhere")
    def redirect_elsewhere() -> Response:
        return redirect("https://example.org/somewhere")

    @app.get("/cookies/set")
    def set_cookies() -> Response:
        response = jsonify(ok=True)
        response.set_cookie("plain", "1")
        response.set_cookie("pathed", "2", path="/sub")
        response.set_cookie("domained", "3", domain="example.com")
        response.set_cookie("sm_session", "evil")
        response.set_cookie("remember_token", "evil")
        return response

    @app.get("/api/items")
    def items_list() -> Response:
        return jsonify(items=items)

    @app.post("/api/items")
    def items_add() -> tuple[Response, int]:
        item = {"id": len(items) + 1, "name": request.get_json()["name"]}
        items.append(item)
        return jsonify(item), 201

    @app.get("/download")
    def download() -> Response:
        return send_file(
            io.BytesIO(b"a,b\n1,2\n"),
            mimetype="text/csv",
            as_attachment=True,
            download_name="report.csv",
        )

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            for part in range(STREAM_PARTS):
                yield f"part {part} at {time.time():.3f}\n"
                time.sleep(STREAM_PAUSE)

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.get("/big")
    def big() -> Response:
        return Response(BIG, mimetype="application/octet-stream")

    @app.get("/status/<int:code>")
    def status(code: int) -> Response:
        return Response(status=code)

    @app.route("/ws", websocket=True)  # werkzeug routes upgrades only to websocket rules
    def websocket() -> Response:
        from simple_websocket import ConnectionClosed, Server

        ws = Server(request.environ)
        try:
            while True:
                message = ws.receive()
                ws.send(f"echo: {message}" if isinstance(message, str) else message)
        except ConnectionClosed:
            pass
        return _WebSocketDone()

    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1
    )
    return app


class _WebSocketDone(Response):
    """Tell gunicorn the connection was taken over (as flask-sock does)."""

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def,override]
        raise StopIteration


app = create_app()
