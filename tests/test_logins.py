"""Revocable logins, password changes and resets, login throttling without lock-outs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD

NEW_PASSWORD = "a-new-password-42"


def copy_cookie(source, target) -> None:
    """Give ``target`` the session cookie of ``source`` (a stolen or copied cookie)."""
    cookie = source.get_cookie("sm_session")
    assert cookie is not None
    target.set_cookie("sm_session", cookie.value)


def logged_in(client) -> bool:
    return client.get("/api/auth/user").status_code == 200


def attempts(app, **where) -> int:
    from manager.extensions import db
    from manager.models import LoginAttempt

    with app.app_context():
        query = select(func.count(LoginAttempt.id))
        for key, value in where.items():
            query = query.where(getattr(LoginAttempt, key) == value)
        return db.session.execute(query).scalar_one()


def add_failures(app, username: str, address: str, count: int) -> None:
    """Record ``count`` failed logins directly (bcrypt makes each real one cost ~0.25 s)."""
    from manager.auth import throttle
    from manager.extensions import db

    with app.app_context():
        for _ in range(count):
            throttle.record_failure(db.session, username, address)
        db.session.commit()


# ---- revocable logins --------------------------------------------------------------------------


def test_logout_ends_the_login_even_for_a_copied_cookie(app, api, make_user):
    make_user("olga")
    session = api("olga")
    thief = app.test_client()
    copy_cookie(session.client, thief)
    assert logged_in(thief), "a copied cookie works while the login lasts"
    assert session.post("/api/auth/logout").status_code == 200
    assert not logged_in(thief), "after logout the old cookie is refused"
    assert thief.get("/").status_code == 302


def test_html_logout_ends_the_login_too(app, client, make_user):
    from tests.test_accounts import csrf_from

    make_user("olga")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "olga", "password": TEST_PASSWORD, "csrf_token": token})
    thief = app.test_client()
    copy_cookie(client, thief)
    assert thief.get("/").status_code == 200
    dashboard = client.get("/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(dashboard)})
    assert thief.get("/").status_code == 302


def test_a_cookie_naming_no_login_is_refused(app, make_user):
    """A cookie that only names the user (as every cookie did before logins were recorded)."""
    user_id = make_user("olga")
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = str(user_id)
        cookie["_fresh"] = True
    assert not logged_in(client)
    with client.session_transaction() as cookie:
        cookie["_user_id"] = str(user_id)
        cookie["_login_id"] = "made-up"
    assert not logged_in(client)


def test_another_users_login_id_is_refused(app, api, make_user):
    make_user("olga")
    bob_id = make_user("bob")
    olga = api("olga")
    with olga.client.session_transaction() as cookie:
        olga_login = cookie["_login_id"]
    forged = app.test_client()
    with forged.session_transaction() as cookie:
        cookie["_user_id"] = str(bob_id)
        cookie["_login_id"] = olga_login
    assert not logged_in(forged)


def test_login_rows_record_where_and_the_page_lists_them(app, api, make_user):
    make_user("olga")
    first = api("olga")
    api("olga")
    logins = first.get("/api/user/logins").get_json()["logins"]
    assert len(logins) == 2
    assert [row["current"] for row in logins].count(True) == 1
    assert {row["address"] for row in logins} == {"127.0.0.1"}
    assert all("id" not in row for row in logins), "a login id is a secret"
    page = first.get("/account").get_data(as_text=True)
    assert page.count('data-sm="login-row"') == 2


def test_login_is_live_for_the_proxy(app, make_user):
    from manager.auth import logins
    from manager.extensions import db
    from manager.models import User

    olga_id = make_user("olga")
    bob_id = make_user("bob")
    with app.app_context():
        olga = db.session.get(User, olga_id)
        login_id = logins.start_login(db.session, olga, "10.0.0.1", "test")
        db.session.commit()
        assert logins.login_is_live(db.session, login_id, olga_id)
        assert not logins.login_is_live(db.session, login_id, bob_id)
        assert not logins.login_is_live(db.session, "", olga_id)
        assert not logins.login_is_live(db.session, "x" * 500, olga_id)
        olga.is_active = False
        db.session.commit()
        assert not logins.login_is_live(db.session, login_id, olga_id), "deactivated"
        olga.is_active = True
        logins.end_login(db.session, login_id)
        db.session.commit()
        assert not logins.login_is_live(db.session, login_id, olga_id), "revoked"


def test_last_seen_is_written_at_most_once_a_minute(app, make_user):
    from manager.auth import logins
    from manager.extensions import db
    from manager.models import User, UserLogin, utcnow

    olga_id = make_user("olga")
    with app.app_context():
        login_id = logins.start_login(db.session, db.session.get(User, olga_id))
        db.session.commit()
        start = db.session.get(UserLogin, login_id).last_seen
        assert logins.check_and_touch(db.session, login_id, olga_id, start) == (True, False)
        later = start + timedelta(seconds=59)
        assert logins.check_and_touch(db.session, login_id, olga_id, later) == (True, False)
        later = start + timedelta(seconds=61)
        assert logins.check_and_touch(db.session, login_id, olga_id, later) == (True, True)
        db.session.commit()
        db.session.expire_all()
        assert db.session.get(UserLogin, login_id).last_seen == later
        assert logins.check_and_touch(db.session, "nope", olga_id, utcnow()) == (False, False)


def test_old_logins_are_purged(app, make_user):
    from manager.auth import logins
    from manager.extensions import db
    from manager.models import User, UserLogin, utcnow

    olga_id = make_user("olga")
    with app.app_context():
        olga = db.session.get(User, olga_id)
        live = logins.start_login(db.session, olga)
        revoked = logins.start_login(db.session, olga)
        idle = logins.start_login(db.session, olga)
        db.session.flush()
        now = utcnow()
        db.session.get(UserLogin, revoked).revoked_at = now - logins.KEEP_REVOKED - timedelta(1)
        db.session.get(UserLogin, idle).last_seen = now - timedelta(days=2)
        db.session.commit()
        assert logins.purge(db.session, timedelta(days=1), user_id=olga_id) == 2
        db.session.commit()
        left = db.session.execute(select(UserLogin.id)).scalars().all()
        assert left == [live]


# ---- the user's own password -------------------------------------------------------------------


def test_own_password_change_keeps_this_login_and_ends_the_others(app, api, make_user):
    make_user("olga")
    here = api("olga")
    elsewhere = api("olga")
    response = here.post(
        "/api/user/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["other_logins_ended"] == 1
    assert logged_in(here.client), "the browser that changed the password stays logged in"
    assert not logged_in(elsewhere.client), "every other login ends"
    assert api().login("olga").status_code == 401, "the old password no longer works"
    assert api().login("olga", NEW_PASSWORD).status_code == 200


def test_password_change_is_audited_without_the_password(app, api, make_user):
    from manager.extensions import db
    from manager.models import AuditEvent

    make_user("olga")
    api("olga").post(
        "/api/user/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
    )
    with app.app_context():
        events = db.session.execute(select(AuditEvent)).scalars().all()
        changed = [e for e in events if e.action == "password_changed"]
        assert len(changed) == 1
        assert NEW_PASSWORD not in str([vars(e) for e in events])


@pytest.mark.parametrize(
    "body, status, field, message",
    [
        ({"current_password": "wrong-one", "new_password": NEW_PASSWORD}, 403, "current_password",
         "current password is wrong"),
        ({"current_password": TEST_PASSWORD, "new_password": "short"}, 400, "new_password",
         "at least 8 characters"),
        ({"current_password": TEST_PASSWORD, "new_password": "é" * 37}, 400, "new_password",
         "at most 72 bytes"),
        ({"current_password": TEST_PASSWORD, "new_password": TEST_PASSWORD}, 400, "new_password",
         "must differ"),
        ({"current_password": TEST_PASSWORD}, 400, "new_password", "as strings"),
        ({"current_password": TEST_PASSWORD, "new_password": 12345678}, 400, "new_password",
         "as strings"),
    ],
)  # fmt: skip
def test_bad_password_changes_are_refused_clearly(api, make_user, body, status, field, message):
    make_user("olga")
    session = api("olga")
    response = session.post("/api/user/password", json=body)
    assert response.status_code == status
    data = response.get_json()
    assert data["field"] == field
    if message:
        assert message in data["message"]
    assert logged_in(session.client)
    assert api().login("olga").status_code == 200, "the password is unchanged"


def test_password_equal_to_the_username_is_refused(api, make_user):
    make_user("olga-longname")
    session = api("olga-longname")
    response = session.post(
        "/api/user/password",
        json={"current_password": TEST_PASSWORD, "new_password": "OLGA-longname"},
    )
    assert response.status_code == 400
    assert "must not be the username" in response.get_json()["message"]


def test_password_length_limits_are_exact(app, api, make_user):
    app.config["SM_PASSWORD_MIN_LENGTH"] = 12
    make_user("olga")
    session = api("olga")

    def change(new: str, current: str) -> int:
        body = {"current_password": current, "new_password": new}
        return session.post("/api/user/password", json=body).status_code

    assert change("x" * 11, TEST_PASSWORD) == 400
    assert change("x" * 12, TEST_PASSWORD) == 200
    assert change("y" * 73, "x" * 12) == 400
    assert change("y" * 72, "x" * 12) == 200
    assert api().login("olga", "y" * 72).status_code == 200


def test_guessing_the_current_password_is_throttled(app, api, make_user):
    make_user("olga")
    session = api("olga")
    for _ in range(app.config["SM_LOGIN_MAX_ATTEMPTS"]):
        wrong = {"current_password": "guess", "new_password": NEW_PASSWORD}
        assert session.post("/api/user/password", json=wrong).status_code == 403
    right = {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD}
    held = session.post("/api/user/password", json=right)
    assert held.status_code == 429 and held.headers["Retry-After"]


def test_account_page_changes_the_password(app, api, make_user):
    from tests.test_accounts import csrf_from

    make_user("olga")
    session = api("olga")
    page = session.get("/account")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    form = {
        "csrf_token": token,
        "current_password": TEST_PASSWORD,
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD + "x",
    }
    mismatch = session.client.post("/account/password", data=form)
    assert mismatch.status_code == 400
    assert "The two new passwords differ." in mismatch.get_data(as_text=True)
    form["confirm_password"] = NEW_PASSWORD
    form["current_password"] = "wrong"
    wrong = session.client.post("/account/password", data=form)
    assert wrong.status_code == 403 and "current password is wrong" in wrong.get_data(True)
    form["current_password"] = TEST_PASSWORD
    done = session.client.post("/account/password", data=form, follow_redirects=True)
    assert done.status_code == 200
    assert "Password changed." in done.get_data(as_text=True)
    assert api().login("olga", NEW_PASSWORD).status_code == 200


def test_account_page_needs_a_login(client):
    assert client.get("/account").status_code == 302
    assert client.post("/api/user/password", json={}).status_code in (400, 401)


# ---- admin: reset, deactivate, unlock ----------------------------------------------------------


def test_admin_reset_ends_every_login_of_that_user(app, api, make_user):
    from manager.extensions import db
    from manager.models import AuditEvent

    make_user("root", "admin")
    olga_id = make_user("olga")
    admin = api("root")
    olga = api("olga")
    response = admin.post(
        f"/api/admin/users/{olga_id}/password", json={"new_password": NEW_PASSWORD}
    )
    assert response.status_code == 200
    assert response.get_json()["logins_ended"] == 1
    assert not logged_in(olga.client)
    assert logged_in(admin.client)
    assert api().login("olga").status_code == 401
    assert api().login("olga", NEW_PASSWORD).status_code == 200
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert "password_reset" in actions


def test_admin_reset_is_validated_and_admin_only(api, make_user):
    make_user("root", "admin")
    olga_id = make_user("olga")
    make_user("dev", "developer")
    admin = api("root")
    short = admin.post(f"/api/admin/users/{olga_id}/password", json={"new_password": "short"})
    assert short.status_code == 400 and short.get_json()["field"] == "new_password"
    missing = admin.post(f"/api/admin/users/{olga_id}/password", json={})
    assert missing.status_code == 400
    assert (
        admin.post(
            "/api/admin/users/99999/password", json={"new_password": NEW_PASSWORD}
        ).status_code
        == 404
    )
    dev = api("dev")
    assert (
        dev.post(
            f"/api/admin/users/{olga_id}/password", json={"new_password": NEW_PASSWORD}
        ).status_code
        == 403
    )
    assert api().login("olga").status_code == 200


def test_admin_password_edit_through_put_ends_logins_too(api, make_user):
    make_user("root", "admin")
    olga_id = make_user("olga")
    admin = api("root")
    olga = api("olga")
    assert (
        admin.put(f"/api/admin/users/{olga_id}", json={"password": NEW_PASSWORD}).status_code == 200
    )
    assert not logged_in(olga.client)


def test_deactivation_ends_the_users_logins(api, make_user):
    make_user("root", "admin")
    olga_id = make_user("olga")
    bob_id = make_user("bob")
    admin = api("root")
    olga = api("olga")
    bob = api("bob")
    assert admin.delete(f"/api/admin/users/{olga_id}").status_code == 200
    assert not logged_in(olga.client)
    assert admin.put(f"/api/admin/users/{bob_id}", json={"is_active": False}).status_code == 200
    assert not logged_in(bob.client)
    # Reactivating does not bring the old cookie back.
    assert admin.put(f"/api/admin/users/{olga_id}", json={"is_active": True}).status_code == 200
    assert not logged_in(olga.client)


def test_admin_can_end_a_users_logins(api, make_user):
    make_user("root", "admin")
    olga_id = make_user("olga")
    admin = api("root")
    olga = api("olga")
    response = admin.post(f"/api/admin/users/{olga_id}/logout")
    assert response.get_json()["logins_ended"] == 1
    assert not logged_in(olga.client)
    assert api().login("olga").status_code == 200


def test_admin_unlock_clears_the_delays(app, api, make_user):
    make_user("root", "admin")
    olga_id = make_user("olga")
    add_failures(app, "olga", "127.0.0.1", 10)
    add_failures(app, "olga", "10.9.9.9", 3)
    assert api().login("olga").status_code == 429
    admin = api("root")
    listed = {u["username"]: u for u in admin.get("/api/admin/users").get_json()["users"]}
    assert listed["olga"]["failed_logins"] == 13
    assert listed["root"]["failed_logins"] == 0
    unlocked = admin.post(f"/api/admin/users/{olga_id}/unlock")
    assert unlocked.get_json()["failures_cleared"] == 13
    assert api().login("olga").status_code == 200


def test_new_user_passwords_follow_the_policy(app, api, make_user):
    make_user("root", "admin")
    admin = api("root")
    too_long = admin.post(
        "/api/admin/users",
        json={"username": "longpw", "password": "p" * 73, "user_level": "viewer"},
    )
    assert too_long.status_code == 400, "bcrypt's 72-byte limit is a clear 400, not a 500"
    assert "72 bytes" in too_long.get_json()["message"]
    app.config["SM_PASSWORD_MIN_LENGTH"] = 10
    short = admin.post(
        "/api/admin/users",
        json={"username": "shortpw", "password": "p" * 9, "user_level": "viewer"},
    )
    assert short.status_code == 400 and "at least 10" in short.get_json()["message"]


# ---- throttling ---------------------------------------------------------------------------------


def test_delays_grow_and_are_capped():
    from manager.auth.throttle import ThrottlePolicy

    policy = ThrottlePolicy(free_attempts=5, base_delay=1, max_delay=60, window=900)
    assert [policy.delay_after(n) for n in range(5)] == [0] * 5
    assert [policy.delay_after(n) for n in range(5, 13)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay_after(10_000) == 60


def test_the_delay_counts_from_the_last_failure(app, make_user):
    from manager.auth import throttle
    from manager.auth.throttle import ThrottlePolicy
    from manager.extensions import db
    from manager.models import utcnow

    policy = ThrottlePolicy(free_attempts=2, base_delay=10, max_delay=100, window=900)
    start = utcnow()
    with app.app_context():
        for i in range(3):
            throttle.record_failure(db.session, "olga", "10.0.0.1", start + timedelta(seconds=i))
        db.session.commit()
        at = start + timedelta(seconds=2)
        assert throttle.retry_after(db.session, "olga", "10.0.0.1", policy, at) == 20
        later = at + timedelta(seconds=15)
        assert throttle.retry_after(db.session, "olga", "10.0.0.1", policy, later) == 5
        later = at + timedelta(seconds=20)
        assert throttle.retry_after(db.session, "olga", "10.0.0.1", policy, later) == 0
        forgotten = start + timedelta(seconds=policy.window + 1)
        assert throttle.retry_after(db.session, "olga", "10.0.0.1", policy, forgotten) == 0


def test_failures_against_other_accounts_never_hold_back_the_admin(app, api, make_user):
    make_user("root", "admin")
    make_user("olga")
    for name in ("olga", "nobody", "x1", "x2"):
        add_failures(app, name, "127.0.0.1", 50)
    assert api().login("olga").status_code == 429, "olga's own failures slow olga down"
    assert api().login("root").status_code == 200, "but never another account"


def test_failures_from_one_address_do_not_slow_the_account_elsewhere(app, make_user):
    make_user("olga")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "192.0.2.66"
    for _ in range(app.config["SM_LOGIN_MAX_ATTEMPTS"]):
        attacker.post("/api/auth/login", json={"username": "olga", "password": "guess"})
    held = attacker.post("/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD})
    assert held.status_code == 429
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    ok = owner.post("/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD})
    assert ok.status_code == 200, "the owner, from their own address, is not locked out"
    assert attempts(app, address="192.0.2.66") == app.config["SM_LOGIN_MAX_ATTEMPTS"]


def test_a_held_back_attempt_is_not_counted_as_a_failure(app, client, make_user):
    make_user("olga")
    add_failures(app, "olga", "127.0.0.1", app.config["SM_LOGIN_MAX_ATTEMPTS"])
    for _ in range(3):
        client.post("/api/auth/login", json={"username": "olga", "password": "guess"})
    assert attempts(app, username="olga") == app.config["SM_LOGIN_MAX_ATTEMPTS"]


def test_success_forgets_only_this_addresss_failures(app, client, make_user):
    make_user("olga")
    add_failures(app, "olga", "127.0.0.1", 2)
    add_failures(app, "olga", "192.0.2.66", 2)
    assert (
        client.post(
            "/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD}
        ).status_code
        == 200
    )
    assert attempts(app, username="olga") == 2
    assert attempts(app, address="192.0.2.66") == 2


def test_html_login_shows_the_delay(app, client, make_user):
    from tests.test_accounts import csrf_from

    make_user("olga")
    add_failures(app, "olga", "127.0.0.1", app.config["SM_LOGIN_MAX_ATTEMPTS"] + 3)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"username": "olga", "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "8"
    assert "Wait 8 seconds" in response.get_data(as_text=True)


def test_logging_in_again_in_the_same_browser_replaces_its_login(app, api, make_user):
    from manager.auth import logins
    from manager.extensions import db

    olga_id = make_user("olga")
    session = api("olga")
    thief = app.test_client()
    copy_cookie(session.client, thief)
    assert session.login("olga").status_code == 200
    assert logged_in(session.client)
    assert not logged_in(thief), "the cookie of the replaced login no longer works"
    with app.app_context():
        assert len(logins.live_logins(db.session, olga_id)) == 1


def test_failures_past_the_window_are_purged_at_the_next_attempt(app, client, make_user):
    from manager.extensions import db
    from manager.models import LoginAttempt

    make_user("olga")
    add_failures(app, "olga", "192.0.2.1", 3)
    with app.app_context():
        for row in db.session.execute(select(LoginAttempt)).scalars():
            row.attempted_at -= timedelta(seconds=app.config["SM_LOGIN_WINDOW_SECONDS"] + 1)
        db.session.commit()
    client.post("/api/auth/login", json={"username": "nobody", "password": "x"})
    assert attempts(app) == 1, "only the new failure is left"
