"""Schemathesis against /api/openapi.json: every operation, as anonymous and as each role.

The app (FakeBackend sessions over the example catalog) is served over real HTTP on a local
port, so a request that hangs fails on the client's timeout instead of hanging the suite.
Viewer and developer log in with a session cookie (and send X-CSRFToken); operator and admin
send an API token. Checks: no 5xx, documented status codes and content types, bodies that
match the schema. Operations that start real work (image builds, backups, restores) or that
could end the caller's own login are left out; their own tests cover them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from werkzeug.serving import WSGIRequestHandler, make_server

from manager.openapi.spec import OPERATIONS
from tests.conftest import TEST_PASSWORD

MAX_EXAMPLES = 4  # per operation; each example is sent once per identity (6 requests)
REQUEST_TIMEOUT = 30  # seconds: a hang guard, far above any real answer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # thousands of requests: no access lines
        pass


@pytest.fixture
def live_url(ready_app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, ready_app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="schemathesis", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def _token(app, user_id: int) -> str:
    from manager.auth.service import create_token
    from manager.extensions import db
    from manager.models import User

    with app.app_context():
        _, plain = create_token(db.session, db.session.get(User, user_id), "schemathesis")
        db.session.commit()
        return plain


def _cookie_session(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    response = browser.post(
        base + "/api/auth/login",
        json={"username": username, "password": TEST_PASSWORD},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    csrf = browser.get(base + "/api/auth/csrf", timeout=REQUEST_TIMEOUT).json()["csrf_token"]
    browser.headers["X-CSRFToken"] = csrf
    return browser


@pytest.fixture
def identities(ready_app, live_url, make_user) -> dict[str, requests.Session]:
    """anonymous, viewer and developer (session cookie + CSRF), operator and admin (tokens)."""
    found = {"anonymous": requests.Session()}
    for level in ("viewer", "operator", "developer", "admin"):
        user_id = make_user(f"st-{level}", level)
        if level in ("viewer", "developer"):
            found[level] = _cookie_session(live_url, f"st-{level}")
        else:
            found[level] = requests.Session()
            found[level].headers["Authorization"] = "Bearer " + _token(ready_app, user_id)
    return found


def _fuzzed(key: str) -> bool:
    op = OPERATIONS[key]
    return not (op.starts_work or op.ends_auth)


def _fuzz(operation, key: str, base: str, identities: dict, checks: list, failures: list) -> int:
    """MAX_EXAMPLES generated cases of one operation, each sent as every identity."""
    sent = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        nonlocal sent
        for who, session in identities.items():
            sent += 1
            try:
                case.call_and_validate(
                    base_url=base, session=session, checks=checks, timeout=REQUEST_TIMEOUT
                )
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together
                failures.append(f"{key} as {who}: {str(exc)[:1500]}")

    run()
    return sent


def test_every_operation_as_every_role(live_url, identities):
    import schemathesis
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    schema = schemathesis.openapi.from_url(live_url + "/api/openapi.json")
    failures: list[str] = []
    cases = 0
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        key = f"{operation.method.upper()} {operation.path}"
        if not _fuzzed(key):
            continue
        operations += 1

        cases += _fuzz(operation, key, live_url, identities, checks, failures)
    print(f"\nschemathesis: {cases} cases over {operations} operations, {len(failures)} failures")
    assert operations > 90
    assert not failures, "\n\n".join(failures[:40])
