"""The script's Flask app behind the proxy: globals, routes, prefix, cookies, templates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from runner_support import ENVIRONMENT, PREFIX, SEED_SCRIPT
from smrunner import SessionContext, create_app, load_context, run_script, user_routes

SessionFiles = Callable[..., tuple[Path, dict[str, Any]]]
PROXY_HEADERS = {
    "X-Forwarded-Prefix": PREFIX,
    "X-Forwarded-Host": "sm.example.test",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-For": "203.0.113.9",
}


def start(session_files: SessionFiles, script: str, **context: Any) -> tuple[Flask, dict[str, Any]]:
    """Build the app for ``script`` and run the script in-process; return app and its globals."""
    context_file, _ = session_files(script, **context)
    ctx = load_context(context_file)
    app = create_app(ctx, secret_key="test-secret")
    return app, run_script(app, ctx)


@pytest.fixture
def seed_client(session_files: SessionFiles, capsys: pytest.CaptureFixture[str]) -> FlaskClient:
    app, _ = start(session_files, SEED_SCRIPT)
    return app.test_client()


def test_seed_pattern_gets_the_context_globals(
    session_files: SessionFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    app, namespace = start(session_files, SEED_SCRIPT)
    out = capsys.readouterr().out
    assert namespace["PROXY_MODE"] is True
    assert namespace["app"] is app
    assert namespace["PARAMETERS"] == {"threshold": 5}
    assert namespace["ENVIRONMENT"] == ENVIRONMENT
    assert namespace["WORKSPACE_PATH"].endswith("workspace")
    assert namespace["__name__"] == "__main__"
    assert "Running in ScriptsManager proxy mode" in out
    # The __main__ block ran, and its app.run(port=5000) did not start a server.
    assert "main block ran" in out


def test_routes_detection(session_files: SessionFiles, capsys: pytest.CaptureFixture[str]) -> None:
    batch_app, _ = start(session_files, "print('no routes here')\n")
    assert user_routes(batch_app) == []
    app, _ = start(session_files, SEED_SCRIPT)
    assert sorted(user_routes(app)) == ["/", "/calculate", "/go"]


def test_blueprint_routes_count_as_script_routes(
    session_files: SessionFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    script = """
    from flask import Blueprint
    bp = Blueprint("tools", __name__)
    bp.add_url_rule("/tools", "tools", lambda: "tools")
    app.register_blueprint(bp)
    """
    app, _ = start(session_files, script)
    assert user_routes(app) == ["/tools"]


def test_url_for_and_redirects_carry_the_forwarded_prefix(seed_client: FlaskClient) -> None:
    response = seed_client.get("/go", headers=PROXY_HEADERS)
    assert response.status_code == 302
    assert response.location == f"{PREFIX}/"


def test_external_urls_use_the_forwarded_host_and_scheme(
    session_files: SessionFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    script = """
    from flask import request, url_for

    @app.route("/where")
    def where():
        return {"url": url_for("where", _external=True), "ip": request.remote_addr}
    """
    app, _ = start(session_files, script)
    answer = app.test_client().get("/where", headers=PROXY_HEADERS).json
    assert answer == {"url": f"https://sm.example.test{PREFIX}/where", "ip": "203.0.113.9"}


def test_prefix_from_context_when_the_header_is_missing(seed_client: FlaskClient) -> None:
    response = seed_client.get("/go")
    assert response.location.endswith(f"{PREFIX}/")


def test_unstripped_prefix_in_the_path_is_tolerated(seed_client: FlaskClient) -> None:
    response = seed_client.post(f"{PREFIX}/calculate", data={"a": "2", "b": "3"})
    assert response.json == {"result": 5}


def test_session_cookie_is_named_and_scoped_to_the_prefix(seed_client: FlaskClient) -> None:
    first = seed_client.get(f"{PREFIX}/", headers=PROXY_HEADERS)
    assert b"visits=1" in first.data
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith("sm_script_session=")
    assert f"Path={PREFIX}" in cookie
    # The test client keeps cookies like a browser: only for paths under the cookie's path.
    assert b"visits=1" in seed_client.get("/", headers=PROXY_HEADERS).data
    assert b"visits=2" in seed_client.get(f"{PREFIX}/", headers=PROXY_HEADERS).data


def test_each_session_gets_its_own_secret_key(tmp_path: Path) -> None:
    context = SessionContext(script_path=str(tmp_path / "a.py"))
    assert create_app(context).secret_key != create_app(context).secret_key


def test_health_route(seed_client: FlaskClient) -> None:
    response = seed_client.get("/_sm/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_template_extends_sm_base(
    session_files: SessionFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    script = """
    from flask import render_template_string
    PAGE = '''{% extends "sm_base.html" %}
    {% block title %}Pump sizing{% endblock %}
    {% block head %}<meta name="x-head" content="1">{% endblock %}
    {% block content %}<p id="c">hello</p><a href="{{ url_for('main') }}">self</a>{% endblock %}
    {% block scripts %}<script>var x = 1;</script>{% endblock %}'''

    @app.route("/")
    def main():
        return render_template_string(PAGE)
    """
    app, _ = start(session_files, script)
    html = app.test_client().get("/", headers=PROXY_HEADERS).get_data(as_text=True)
    assert '<html lang="es" data-bs-theme="dark">' in html
    assert "<title>Pump sizing</title>" in html
    assert "SIDEL ScriptsManager" in html
    assert "Water &lt;Analysis&gt;" in html  # escaped
    assert '<meta name="x-head" content="1">' in html
    assert '<p id="c">hello</p>' in html
    assert f'<a href="{PREFIX}/">self</a>' in html
    assert "<script>var x = 1;</script>" in html
    assert f'href="{PREFIX}/_sm/static/bootstrap5/css/bootstrap.min.css"' in html


def test_bootstrap_css_is_served_locally(seed_client: FlaskClient) -> None:
    response = seed_client.get("/_sm/static/bootstrap5/css/bootstrap.min.css")
    assert response.status_code == 200
    assert b"Bootstrap" in response.data[:200]
    response.close()


def test_light_theme_and_english_by_default(
    session_files: SessionFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    script = """
    from flask import render_template_string
    app.add_url_rule("/", "main", lambda: render_template_string('{% extends "sm_base.html" %}'))
    """
    app, _ = start(session_files, script, environment={"USER_LANGUAGE": 'en" onload="x'})
    html = app.test_client().get("/").get_data(as_text=True)
    assert '<html lang="en" data-bs-theme="light">' in html


def test_script_templates_and_static_folders_are_found(
    session_files: SessionFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = """
    from flask import render_template
    app.add_url_rule("/", "main", lambda: render_template("page.html", who="operator"))
    """
    context_file, data = session_files(script)
    folder = Path(data["script_path"]).parent
    (folder / "templates").mkdir()
    (folder / "templates" / "page.html").write_text(
        '{% extends "sm_base.html" %}{% block content %}hi {{ who }}{% endblock %}'
    )
    (folder / "static").mkdir()
    (folder / "static" / "app.js").write_text("console.log(1)")
    ctx = load_context(context_file)
    app = create_app(ctx)
    run_script(app, ctx)
    client = app.test_client()
    assert "hi operator" in client.get("/").get_data(as_text=True)
    static = client.get("/static/app.js")
    assert static.data == b"console.log(1)"
    static.close()
    assert user_routes(app) == ["/"]
