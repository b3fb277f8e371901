"""CSRF on every state-changing request: a logged-in browser's POST/PUT/DELETE without the
token is refused before it does anything (a page of another site could send just that)."""

from __future__ import annotations

from tests.authz.conftest import World
from tests.authz.matrix import FORM_ROUTES, accept_for, build_url, owner_for, routes

# Requests that need no CSRF token, and why.
EXEMPT = {
    "POST /api/auth/login": "logging in needs no session yet (rate-limited instead)",
    "POST /login": "logging in needs no session yet (rate-limited instead)",
}


def test_every_state_changing_route_wants_the_csrf_token(world: World) -> None:
    wrong = []
    for key in routes(world.app):
        method, rule = key.split(" ", 1)
        if method == "GET" or key in EXEMPT:
            continue
        for caller in ("operator", "admin"):
            url = build_url(world, key, owner_for(world, key, caller))
            client = world.login(caller) if "logout" in rule else world.client(caller)
            body = {"data": {}} if rule in FORM_ROUTES else {"json": {}}
            response = client.client.open(url, method=method, headers=accept_for(rule), **body)
            text = response.get_data(as_text=True)
            response.close()
            if response.status_code != 400 or "security token" not in text:
                wrong.append(f"{key} as {caller}: {response.status_code} {text[:80]!r}")
    assert not wrong, "answered without a CSRF token:\n" + "\n".join(wrong)
