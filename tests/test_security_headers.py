"""The manager's response headers, trusted proxies, the Secure cookie, /health, and no GET that
changes state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from manager.settings import ConfigError
from tests.conftest import TEST_PASSWORD

TEMPLATES = Path(__file__).resolve().parent.parent / "manager" / "templates"


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


# ---- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/health", "/api/i18n/languages", "/no/such/page"])
def test_every_manager_response_carries_the_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    csp = csp_directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"], "no inline script, no eval, no other origin"
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["style-src"]


def test_logged_in_pages_carry_the_headers(api, make_user):
    make_user("root", "admin")
    admin = api("root")
    for path in ("/", "/account", "/admin/users", "/logs"):
        response = admin.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self';" in response.headers["Content-Security-Policy"], path


def test_templates_hold_no_inline_script():
    """Executable script lives in static files; JSON data blocks are not executed, so allowed."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            if "src=" in tag or 'type="application/json"' in tag:
                continue
            offenders.append(f"{template.relative_to(TEMPLATES)}: {tag}")
        for handler in re.findall(r"\son[a-z]+\s*=\s*[\"']", text, flags=re.I):
            offenders.append(f"{template.relative_to(TEMPLATES)}: inline handler {handler}")
        if "javascript:" in text.lower():
            offenders.append(f"{template.relative_to(TEMPLATES)}: javascript: URL")
    assert offenders == []


def test_rendered_pages_hold_no_inline_script(api, make_user):
    make_user("root", "admin")
    admin = api("root")
    for path in ("/", "/account", "/admin/users", "/admin/sessions", "/logs"):
        html = admin.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)


# ---- the session cookie --------------------------------------------------------------------------


def login_cookie(client, **kwargs) -> str:
    response = client.post(
        "/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD}, **kwargs
    )
    assert response.status_code == 200
    return next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("sm_session="))


def test_the_cookie_is_secure_over_tls_only(app, make_user):
    make_user("olga")
    plain = login_cookie(app.test_client())
    assert "Secure" not in plain and "HttpOnly" in plain and "SameSite=Lax" in plain
    tls = login_cookie(app.test_client(), base_url="https://sm.example.org")
    assert "; Secure" in tls


def test_forwarded_proto_counts_only_from_a_trusted_proxy(app, app_config, make_user):
    from manager import create_app

    make_user("olga")
    forged = {"X-Forwarded-Proto": "https"}
    assert "Secure" not in login_cookie(app.test_client(), headers=forged)
    behind = create_app({**app_config, "SM_TRUSTED_PROXIES": "1"})
    assert "; Secure" in login_cookie(behind.test_client(), headers=forged)


# ---- trusted proxies -----------------------------------------------------------------------------


def failed_login_address(app, client, headers: dict, remote: str = "127.0.0.1") -> str:
    from manager.extensions import db
    from manager.models import LoginAttempt

    client.post(
        "/api/auth/login",
        json={"username": "olga", "password": "wrong"},
        headers=headers,
        environ_base={"REMOTE_ADDR": remote},
    )
    with app.app_context():
        row = db.session.execute(
            select(LoginAttempt).order_by(LoginAttempt.id.desc()).limit(1)
        ).scalar_one()
        return row.address


def test_without_trusted_proxies_forwarded_for_is_ignored(app, client, make_user):
    make_user("olga")
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    assert failed_login_address(app, client, spoofed) == "127.0.0.1"


def test_spoofed_forwarded_for_does_not_escape_the_delays(app, client, make_user):
    make_user("olga")
    for i in range(app.config["SM_LOGIN_MAX_ATTEMPTS"]):
        client.post(
            "/api/auth/login",
            json={"username": "olga", "password": "wrong"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
    again = client.post(
        "/api/auth/login",
        json={"username": "olga", "password": TEST_PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.200"},
    )
    assert again.status_code == 429


def test_hop_count_takes_the_address_the_proxy_saw(app, app_config, make_user):
    from manager import create_app

    make_user("olga")
    behind = create_app({**app_config, "SM_TRUSTED_PROXIES": "1"})
    client = behind.test_client()
    chain = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}  # the first is client-written
    assert failed_login_address(behind, client, chain) == "203.0.113.9"


def test_behind_a_proxy_each_client_has_its_own_delays(app, app_config, make_user):
    from manager import create_app

    make_user("olga")
    behind = create_app({**app_config, "SM_TRUSTED_PROXIES": "1"}).test_client()
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    for _ in range(app.config["SM_LOGIN_MAX_ATTEMPTS"]):
        behind.post("/api/auth/login", json={"username": "olga", "password": "x"}, headers=attacker)
    held = behind.post(
        "/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD}, headers=attacker
    )
    assert held.status_code == 429
    owner = behind.post(
        "/api/auth/login",
        json={"username": "olga", "password": TEST_PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.20"},
    )
    assert owner.status_code == 200, "clients behind one proxy do not share a throttle"


def test_cidr_list_trusts_only_the_listed_proxies(app, app_config, make_user):
    from manager import create_app

    make_user("olga")
    behind = create_app({**app_config, "SM_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    client = behind.test_client()
    chain = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.1.2.3"}
    assert failed_login_address(behind, client, chain) == "203.0.113.9"
    assert failed_login_address(behind, client, chain, remote="192.0.2.50") == "192.0.2.50", (
        "from an untrusted peer the header is ignored"
    )
    garbage = {"X-Forwarded-For": "not-an-address"}
    assert failed_login_address(behind, client, garbage) == "127.0.0.1"


@pytest.mark.parametrize("value", ["10.0.0.0/33", "proxy.example.org", "-1", "1.5"])
def test_a_bad_trusted_proxies_value_stops_the_start(app_config, value):
    from manager import create_app

    with pytest.raises(ConfigError, match="SM_TRUSTED_PROXIES"):
        create_app({**app_config, "SM_TRUSTED_PROXIES": value})


def test_parse_trusted_proxies():
    from manager.security import parse_trusted_proxies

    assert parse_trusted_proxies("0") == 0
    assert parse_trusted_proxies("") == 0
    assert parse_trusted_proxies(2) == 2
    assert [str(n) for n in parse_trusted_proxies("10.0.0.0/8,::1")] == ["10.0.0.0/8", "::1/128"]


# ---- /health -------------------------------------------------------------------------------------


def test_health_tells_anonymous_callers_only_up_or_down(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "healthy"}


def test_health_detail_is_for_admins(api, make_user):
    make_user("olga", "developer")
    make_user("root", "admin")
    assert set(api("olga").get("/health").get_json()) == {"status"}
    detail = api("root").get("/health").get_json()
    assert {"database", "container_engine", "active_scripts", "proxy_sessions"} <= set(detail)


# ---- no GET changes state ------------------------------------------------------------------------

# Verbs that name a state change, as a URL's last segment or in an endpoint's name.
STATE_VERBS = {
    "activate", "build", "bulk", "cleanup", "conda", "create", "delete", "deactivate", "execute",
    "export", "kill", "login", "logout", "password", "proxy-access", "proxy-cleanup", "refresh",
    "refresh-metadata", "remove", "reset", "retention_run", "revoke", "run", "save",
    "set-active", "start", "stop", "unlock", "update",
}  # fmt: skip
# Known state-changing endpoints (the seed had GET for the first).
STATE_CHANGING = {
    "api_catalog.group_refresh",
    "api_catalog.refresh_metadata",
    "api_environments.refresh",
    "api_environments.build",
    "api_sessions.execute",
    "api_sessions.stop",
    "api_sessions.proxy_access",
    "api_sessions.proxy_cleanup",
    "api_auth.logout",
    "api_user.change_password",
    "api_admin_users.reset",
    "api_admin_users.unlock",
    "api_admin_users.end_logins",
    "auth.logout",
    "auth.change_password",
}


# What a GET may write: the mirror of conda-envs/ on disk, refreshed when read, and the audit
# of an admin reading other users' logs.
READ_SIDE = {"conda_environments", "audit_events"}
READ_AUDITS = {"logs_listed"}


def get_rules(app):
    return [r for r in app.url_map.iter_rules() if "GET" in (r.methods or set())]


def test_known_state_changes_are_not_get(app):
    endpoints = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    assert set(endpoints) >= STATE_CHANGING, "a listed endpoint no longer exists: update the list"
    for name in STATE_CHANGING:
        assert "GET" not in endpoints[name].methods, f"{name} answers GET"
    refresh = app.test_client().get("/api/script-groups/1/refresh")
    assert refresh.status_code == 405


def test_no_get_route_is_named_like_a_state_change(app):
    offenders = []
    for rule in get_rules(app):
        if rule.endpoint == "auth.login":  # the login form itself; its POST logs in
            continue
        last = rule.rule.rstrip("/").rsplit("/", 1)[-1]
        name = rule.endpoint.rsplit(".", 1)[-1]
        if last in STATE_VERBS or name in STATE_VERBS:
            offenders.append(f"GET {rule.rule} ({rule.endpoint})")
    assert offenders == []


def table_counts(app) -> dict[str, int]:
    from manager.extensions import Base, db

    with app.app_context():
        return {
            table.name: db.session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


def test_walking_every_get_route_changes_nothing(ready_app, app, api, make_user):
    """Every GET route, as an admin, with real ids: no audit event, no row added or removed."""
    from manager.extensions import db
    from manager.models import AuditEvent, Script, ScriptGroup

    root_id = make_user("root", "admin")
    admin = api("root")
    admin.get("/")  # the first page creates the default project: not what is under test
    with app.app_context():
        group_id = db.session.execute(select(func.min(ScriptGroup.id))).scalar_one()
        script_id = db.session.execute(select(func.min(Script.id))).scalar_one()
    values = {
        "group_id": group_id,
        "script_id": script_id,
        "user_id": root_id,
        "project_id": 1,
        "token_id": 1,
        "preset_id": 1,
        "execution_id": "0" * 32,
        "language": "en",
        "name": "base",
        "filename": "css/app.css",
    }
    before = table_counts(app)
    walked = []
    for rule in get_rules(app):
        url = rule.rule
        for argument in rule.arguments:
            value = values.get(argument, 1 if "<int:" + argument in url else "x")
            url = re.sub(rf"<(?:[a-z]+:)?{argument}>", str(value), url)
        response = admin.get(url)
        assert response.status_code < 500, url
        walked.append(url)
    assert len(walked) > 30
    after = table_counts(app)
    changed = {
        t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in READ_SIDE
    }
    assert changed == {}, f"GET requests changed rows: {changed}"
    with app.app_context():
        actions = set(db.session.execute(select(AuditEvent.action)).scalars())
    assert actions - {"login"} <= READ_AUDITS, "a GET recorded a state change in the audit log"


def test_gunicorn_leaves_forwarded_headers_to_the_app():
    """gunicorn would otherwise believe X-Forwarded-Proto from 127.0.0.1 whatever the setting."""
    from gunicorn.config import Config

    from manager.server import gunicorn_argv

    argv = gunicorn_argv("127.0.0.1", 5002)
    value = argv[argv.index("--forwarded-allow-ips") + 1]
    config = Config()
    config.set("forwarded_allow_ips", value)
    assert config.forwarded_allow_ips == []
