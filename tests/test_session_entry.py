"""The execute answer's way into the session host (``enter_url``): a ticket minted for the
session's owner in the answer to their own request, as the manager's origin would mint it
(single-use, 30 s, stored hashed, bound to that session), so the new tab skips two redirects."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import select

from manager.models import SessionTicket
from manager.sessions.fake import FakeScript
from tests.support.catalog import script_id

ENTER = re.compile(r"^http://(p\d+-s\d+-u\d+)\.localhost/__sm/enter\?ticket=([\w-]+)&next=(\S+)$")


@pytest.fixture
def olga(ready_app, make_user, api):
    make_user("olga", "operator")
    ready_app.config["SM_TEST_BACKEND"].program = FakeScript(exit_code=None, start_polls=1)
    return api("olga")


def tickets(app) -> list[SessionTicket]:
    from manager.extensions import db

    with app.app_context():
        rows = list(db.session.execute(select(SessionTicket)).scalars())
        for row in rows:
            db.session.expunge(row)
        db.session.remove()
    return rows


def test_execute_answers_with_a_single_use_ticket_into_the_sessions_host(ready_app, olga):
    sid = script_id(ready_app, "calculator.py")
    body = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()
    found = ENTER.match(body["enter_url"])
    assert found is not None, body["enter_url"]
    label, ticket, target = found.groups()
    assert body["proxy_url"] == f"http://{label}.localhost{unquote(target)}"
    [row] = tickets(ready_app)  # stored hashed, bound to this session, 30 s
    assert row.ticket_hash == hashlib.sha256(ticket.encode()).hexdigest()
    assert ticket not in (row.ticket_hash, row.session_key)
    assert (row.session_key, row.host_label) == (body["execution_id"], label)
    assert (row.expires_at - row.created_at).total_seconds() == 30
    assert row.user_id == body["user_id"] and row.login_id  # revoked with olga's login

    entered = olga.client.get(body["enter_url"])
    assert entered.status_code == 302
    assert entered.headers["Location"] == unquote(target)
    assert entered.headers["Set-Cookie"].startswith("sm_host=")
    again = olga.client.get(body["enter_url"])
    assert again.status_code == 403 and "Set-Cookie" not in again.headers


def test_reopening_answers_with_a_fresh_ticket_and_nothing_else_carries_one(ready_app, olga):
    sid = script_id(ready_app, "calculator.py")
    first = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()
    reopened = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()
    assert reopened["reused"] is True and reopened["execution_id"] == first["execution_id"]
    one, two = (parse_qs(urlsplit(b["enter_url"]).query)["ticket"][0] for b in (first, reopened))
    assert one != two and len(tickets(ready_app)) == 2
    # Listings and status polls give the plain URL only: a ticket is minted for the one
    # answer that opens the session.
    status = olga.get(f"/api/executions/{first['execution_id']}").get_json()
    assert "enter_url" not in status
    listing = olga.get(f"/api/scripts/{sid}/status").get_json()
    assert all("enter_url" not in run for run in listing["running"] + listing["recent"])
    assert len(tickets(ready_app)) == 2


def test_a_batch_run_gets_no_ticket(ready_app, olga):
    ready_app.config["SM_TEST_BACKEND"].program = FakeScript(exit_code=0)
    body = olga.post(f"/api/scripts/{script_id(ready_app, 'unit_converter.py')}/execute").get_json()
    assert body["interactive"] is False and "enter_url" not in body
    assert tickets(ready_app) == []


def test_no_ticket_for_a_session_of_another_user(ready_app, olga):
    from manager.models import User
    from manager.proxy.links import session_entry_url

    with ready_app.test_request_context("/", base_url="http://localhost"):
        from manager.extensions import db

        user = db.session.execute(select(User).where(User.username == "olga")).scalar_one()
        other = f"/project/1/script/1/user/{user.id + 1}/"
        assert session_entry_url(other, "some-session", user) is None
        db.session.remove()
    assert tickets(ready_app) == []
