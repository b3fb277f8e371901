"""Schemathesis against /api/openapi.json: every operation, as anonymous and as each role.

The app (FakeBackend sessions over the example catalog) is served over real HTTP on a local
port, so a request that hangs fails on the client's timeout instead of hanging the suite.
Viewer and developer log in with a session cookie (and send X-CSRFToken); operator and admin
send an API token. Checks: no 5xx, documented status codes and content types, bodies that
match the schema. Operations that start real work (image builds, backups, restores) or that
could end the caller's own login are left out; their own tests cover them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FlakyStrategyDefinition
from werkzeug.serving import WSGIRequestHandler, make_server

from manager.openapi.spec import LINKS, OPERATIONS, operation_id
from tests.conftest import TEST_PASSWORD

MAX_EXAMPLES = 3  # per operation; each example is sent once per identity (5 requests)
STATEFUL_RUNS = 10  # scenarios per role, each up to STATEFUL_STEPS linked calls
STATEFUL_STEPS = 8
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


def _checks() -> list:
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]


CHECKS = _checks()


@pytest.fixture
def real_ids(ready_app) -> dict[str, list[int]]:
    """The catalog's script and group ids: half the generated ids are mapped onto them."""
    from manager.extensions import db
    from manager.models import Script, ScriptGroup

    with ready_app.app_context():
        return {
            "script_id": sorted(db.session.scalars(db.select(Script.id))),
            "group_id": sorted(db.session.scalars(db.select(ScriptGroup.id))),
        }


def _realistic(case, real_ids: dict[str, list[int]]) -> None:
    """An even generated script/group id becomes a real one (odd ones stay random: 404s)."""
    places = [case.path_parameters or {}]
    if isinstance(case.body, dict):
        places.append(case.body)
    for place in places:
        for name, pool in real_ids.items():
            value = place.get(name)
            if pool and isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0:
                place[name] = pool[(value // 2) % len(pool)]


def _own_token(session: requests.Session) -> dict[str, str]:
    """A token identity's own header, over any Authorization Schemathesis generates for a case
    (cookie and anonymous identities keep those: a made-up token must not count)."""
    token = session.headers.get("Authorization")
    return {"Authorization": str(token)} if token else {}


def _fuzzed(key: str) -> bool:
    op = OPERATIONS[key]
    return not (op.starts_work or op.ends_auth)


def _fuzz(operation, key: str, base: str, identities: dict, real_ids: dict, failures: list) -> int:
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
        _realistic(case, real_ids)
        for who, session in identities.items():
            sent += 1
            try:
                case.call_and_validate(
                    base_url=base,
                    session=session,
                    headers=_own_token(session),
                    checks=CHECKS,
                    timeout=REQUEST_TIMEOUT,
                )
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together
                failures.append(f"{key} as {who}: {str(exc)[:1500]}")

    run()
    return sent


def test_every_operation_as_every_role(live_url, identities, real_ids, capsys):
    import schemathesis

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
        cases += _fuzz(operation, key, live_url, identities, real_ids, failures)
    with capsys.disabled():  # the figure shows in CI's output, not only with -s
        print(f"\nschemathesis: {cases} cases over {operations} operations, {len(failures)} failed")
    assert operations == sum(_fuzzed(key) for key in OPERATIONS)  # every one the spec holds
    assert not failures, "\n\n".join(failures[:40])


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_linked_scenarios_create_use_and_delete(live_url, identities, real_ids, role, capsys):
    """Stateful: what one call creates (a project, schedule, preset, run...) feeds the next."""
    import schemathesis
    from schemathesis.generation.stateful import run_state_machine_as_test

    linked = {key for source, _, _, targets in LINKS for key in (source, *targets)}
    wanted = sorted(operation_id(key) for key in linked if _fuzzed(key))
    schema = schemathesis.openapi.from_url(live_url + "/api/openapi.json")
    machine = schema.include(operation_id=wanted).as_state_machine()
    session = identities[role]
    steps = succeeded = 0

    class Scenario(machine):  # type: ignore[valid-type, misc]
        def before_call(self, case) -> None:
            _realistic(case, real_ids)

        def get_call_kwargs(self, case) -> dict:
            return {
                "base_url": live_url,
                "session": session,
                "headers": _own_token(session),
                "timeout": REQUEST_TIMEOUT,
            }

        def after_call(self, response, case) -> None:
            nonlocal steps, succeeded
            steps += 1
            succeeded += response.status_code < 300

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    # The server's state (what earlier scenarios created) decides which links can be followed,
    # so Hypothesis may see a replayed prefix take another turn and stop exploring: that ends
    # the exploration, it is no failure of the API (those raise FailureGroup).
    with contextlib.suppress(FlakyStrategyDefinition):
        run_state_machine_as_test(
            Scenario,
            settings=settings(
                max_examples=STATEFUL_RUNS,
                stateful_step_count=STATEFUL_STEPS,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            ),
        )
    with capsys.disabled():
        print(f"\nschemathesis stateful ({role}): {steps} calls, {succeeded} answered 2xx")
    assert steps > 0 and succeeded > 0
