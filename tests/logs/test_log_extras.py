"""A run's PDF, share links, personal bookmarks and notes, and the enforced log quota."""

from __future__ import annotations

import re
import zlib
from datetime import timedelta

import pytest

from manager.logs import bookmarks, shares
from manager.logs.pdf import find_font, run_pdf
from manager.logs.store import Line
from manager.models import utcnow
from tests.logs.test_api_support import World, audit_actions, build_world
from tests.support.catalog import script_id

UNICODE_LINE = "café é 中文 😀 done"


@pytest.fixture
def world(app, make_user) -> World:
    return build_world(app, make_user)


def pdf_pages(body: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", body))


def pdf_text(body: bytes) -> bytes:
    """The page content streams inflated (enough to find Courier text in them)."""
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S):
        try:
            out.append(zlib.decompress(match.group(1)))
        except zlib.error:
            out.append(match.group(1))
    return b"\n".join(out)


# --- PDF ----------------------------------------------------------------------------------


def test_pdf_of_my_run_has_header_and_paginates(world, api):
    lines = [("stdout", f"line {n}") for n in range(300)] + [("stderr", UNICODE_LINE)]
    run = world.run("olga", output="x", lines=lines, parameters={"month": "2026-11"})
    response = api("olga").get(f"/api/logs/execution/{run}/pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert f"execution_{run}.pdf" in response.headers["Content-Disposition"]
    body = response.data
    assert body.startswith(b"%PDF-") and pdf_pages(body) >= 3  # 300 lines do not fit a page


def test_pdf_of_a_run_without_its_file_uses_the_stored_output(world, api):
    run = world.run("olga", output="kept in the row\n", with_file=False)
    response = api("olga").get(f"/api/logs/execution/{run}/pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")


def test_pdf_unicode_does_not_crash_with_the_ttf_or_without():
    record = {"execution_id": "r1", "script_name": "Monthly report", "parameters": {"x": "é"}}
    lines = [
        Line(1, "2026-12-05T08:00:00.000Z", "stdout", UNICODE_LINE),
        Line(2, "", "stderr", "\x1b[31mred\t!"),
    ]
    if find_font() is not None:  # DejaVu Sans Mono: é prints, CJK and emoji become "?"
        body = run_pdf(record, lines)
        assert body.startswith(b"%PDF-") and b"DejaVuSansMono" in body
    plain = pdf_text(run_pdf(record, lines, use_default_font=False))  # Courier: Latin-1 only
    assert b"(Script: Monthly report \\(id None\\)) Tj" in plain
    assert b"[stdout] caf\xe9 \xe9 ?? ? done" in plain  # one "?" per character it lacks
    assert b"[stderr] ?[31mred    !" in plain  # control characters never reach the PDF


def test_pdf_stops_at_its_line_cap_with_a_note():
    record = {"execution_id": "r2"}
    lines = (Line(n, "", "stdout", f"row {n}") for n in range(1, 1000))
    text = pdf_text(run_pdf(record, lines, max_lines=50, use_default_font=False))
    assert b"row 50" in text and b"row 51" not in text
    assert b"The PDF stops after 50 lines" in text


def test_pdf_wraps_a_very_long_line_and_caps_it():
    record = {"execution_id": "r3"}
    long = "a" * 5000
    text = pdf_text(run_pdf(record, [Line(1, "", "stdout", long)], use_default_font=False))
    assert b"[... 3000 mor" in text  # the rest is cut, with how much
    assert text.count(b"Tj") > len(long[:2000]) // 130 + 10  # wrapped over many rows


def test_pdf_of_someone_elses_run_is_not_found(world, api):
    run = world.run("ivan", output="secret")
    response = api("olga").get(f"/api/logs/execution/{run}/pdf")
    assert response.status_code == 404 and "yours" in response.get_json()["message"]
    assert api("olga").get("/api/logs/execution/nope/pdf").status_code == 404
    assert api().get(f"/api/logs/execution/{run}/pdf").status_code == 401


def test_admin_pdf_follows_admin_access_setting_and_is_audited(world, api):
    run = world.run("ivan", output="hello")
    root = api("root")
    assert root.get(f"/api/logs/execution/{run}/pdf").status_code == 200
    assert audit_actions(world.app, "log_accessed")[0]["target"] == f"execution:{run}"
    world.app.config["SM_ADMIN_CAN_ACCESS_ALL_DATA"] = False
    assert root.get(f"/api/logs/execution/{run}/pdf").status_code == 404


# --- bookmarks and notes ------------------------------------------------------------------


def test_bookmark_and_note_are_personal(world, api):
    run = world.run("olga")
    olga = api("olga")
    url = f"/api/logs/execution/{run}/mark"
    assert olga.get(url).get_json() == {
        "execution_id": run,
        "bookmarked": False,
        "note": "",
        "updated_at": None,
    }
    saved = olga.put(url, json={"bookmarked": True, "note": "  check the totals  "})
    assert saved.status_code == 200
    assert saved.get_json()["bookmarked"] is True and saved.get_json()["note"] == "check the totals"
    assert olga.put(url, json={"bookmarked": False}).get_json()["note"] == "check the totals"
    listed = olga.get("/api/logs/marks").get_json()["marks"]
    assert [(m["execution_id"], m["script_name"]) for m in listed] == [(run, "Monthly report")]
    assert olga.get("/api/logs/marks?bookmarked=1").get_json()["marks"] == []
    # ivan sees neither olga's run nor her marks
    ivan = api("ivan")
    assert ivan.get(url).status_code == 404
    assert ivan.put(url, json={"bookmarked": True}).status_code == 404
    assert ivan.delete(url).status_code == 404
    assert ivan.get("/api/logs/marks").get_json()["marks"] == []
    # the admin's own mark on olga's run is the admin's, not olga's
    root = api("root")
    assert root.put(url, json={"note": "admin note"}).status_code == 200
    assert olga.get(url).get_json()["note"] == "check the totals"
    # emptying both removes the mark
    assert olga.put(url, json={"note": ""}).get_json()["updated_at"] is None
    assert olga.get("/api/logs/marks").get_json()["marks"] == []
    assert olga.delete(url).get_json()["removed"] is False
    assert root.delete(url).get_json()["removed"] is True


def test_bookmark_input_is_checked(world, api):
    run = world.run("olga")
    olga = api("olga")
    url = f"/api/logs/execution/{run}/mark"
    for payload in (
        {},
        {"bookmarked": "yes"},
        {"note": 5},
        {"colour": "red", "note": "x"},
        {"note": "n" * (bookmarks.MAX_NOTE + 1)},
        [1, 2],
    ):
        response = olga.put(url, json=payload)
        assert response.status_code == 400, payload
        assert response.get_json()["message"]
    assert olga.put(url, data="not json", content_type="application/json").status_code == 400
    assert olga.put(url, json={"note": "n" * bookmarks.MAX_NOTE}).status_code == 200


def test_bookmark_count_is_capped(world, api, monkeypatch):
    monkeypatch.setattr(bookmarks, "MAX_MARKS", 2)
    runs = [world.run("olga", with_file=False) for _ in range(3)]
    olga = api("olga")
    for run in runs[:2]:
        assert (
            olga.put(f"/api/logs/execution/{run}/mark", json={"bookmarked": True}).status_code
            == 200
        )
    refused = olga.put(f"/api/logs/execution/{runs[2]}/mark", json={"bookmarked": True})
    assert refused.status_code == 409 and "2 runs" in refused.get_json()["message"]
    # changing an existing mark is still allowed
    assert olga.put(f"/api/logs/execution/{runs[0]}/mark", json={"note": "x"}).status_code == 200


def test_marks_of_a_deleted_run_disappear(world, api):
    run = world.run("olga")
    olga = api("olga")
    olga.put(f"/api/logs/execution/{run}/mark", json={"bookmarked": True})
    assert olga.delete(f"/api/logs/execution/{run}").status_code == 200
    assert olga.get("/api/logs/marks").get_json()["marks"] == []


# --- share links --------------------------------------------------------------------------


def test_share_link_opens_only_for_who_could_see_the_run(world, api):
    run = world.run("olga", output="hi")
    olga = api("olga")
    created = olga.post(f"/api/logs/execution/{run}/shares", json={"expires_in_days": 3})
    assert created.status_code == 201
    link = created.get_json()
    assert link["active"] and link["url"].endswith(f"/logs/shared/{link['token']}")
    assert len(link["token"]) >= 40
    assert audit_actions(world.app, "log_shared")[0]["target"] == f"execution:{run}"
    # the owner: JSON and the page redirect
    assert olga.get(f"/api/logs/shares/{link['token']}").get_json()["execution_id"] == run
    page = olga.get(f"/logs/shared/{link['token']}")
    assert page.status_code == 302 and page.headers["Location"].endswith(f"/logs/{run}")
    # another operator: the token changes nothing
    ivan = api("ivan")
    assert ivan.get(f"/api/logs/shares/{link['token']}").status_code == 404
    assert ivan.get(f"/logs/shared/{link['token']}").status_code == 404
    assert ivan.get(f"/api/logs/execution/{run}").status_code == 404
    assert ivan.get(f"/api/logs/execution/{run}/shares").status_code == 404
    assert ivan.post(f"/api/logs/execution/{run}/shares", json={}).status_code == 404
    assert ivan.delete(f"/api/logs/shares/{link['id']}").status_code == 404
    # not logged in: the API says 401, the page sends to the login
    assert api().get(f"/api/logs/shares/{link['token']}").status_code == 401
    anonymous = api().get(f"/logs/shared/{link['token']}")
    assert anonymous.status_code == 302 and "login" in anonymous.headers["Location"]
    # an admin sees it while SM_ADMIN_CAN_ACCESS_ALL_DATA is on, not when off
    root = api("root")
    assert root.get(f"/api/logs/shares/{link['token']}").status_code == 200
    world.app.config["SM_ADMIN_CAN_ACCESS_ALL_DATA"] = False
    assert root.get(f"/api/logs/shares/{link['token']}").status_code == 404
    assert api("olga").get("/api/logs/shares/unknown-token").status_code == 404


def test_share_link_revoke_and_expiry(world, api):
    run = world.run("olga")
    olga = api("olga")
    link = olga.post(f"/api/logs/execution/{run}/shares").get_json()
    assert link["expires_at"] > (utcnow() + timedelta(days=6)).isoformat()  # 7 days by default
    revoked = olga.delete(f"/api/logs/shares/{link['id']}")
    assert revoked.status_code == 200 and revoked.get_json()["revoked"] is True
    gone = olga.get(f"/api/logs/shares/{link['token']}")
    assert gone.status_code == 410 and "revoked" in gone.get_json()["message"]
    assert olga.get(f"/logs/shared/{link['token']}").status_code == 410
    listed = olga.get(f"/api/logs/execution/{run}/shares").get_json()["shares"]
    assert [s["active"] for s in listed] == [False]
    assert olga.delete("/api/logs/shares/999999").status_code == 404
    # expiry: resolve the same link a day after it ends
    other = olga.post(f"/api/logs/execution/{run}/shares", json={"expires_in_days": 1}).get_json()
    from manager.extensions import db
    from manager.models import User

    with world.app.app_context():
        user = db.session.get(User, world.users["olga"])
        later = utcnow() + timedelta(days=2)
        with pytest.raises(shares.ShareError) as exc:
            shares.resolve_share(db.session, user, other["token"], world.app.config, now=later)
        assert exc.value.status == 410 and "expired" in exc.value.message


def test_share_input_and_limits(world, api, monkeypatch):
    run = world.run("olga")
    olga = api("olga")
    url = f"/api/logs/execution/{run}/shares"
    for payload in ({"expires_in_days": 0}, {"expires_in_days": 91}, {"expires_in_days": "7"},
                    {"expires_in_days": True}, [1]):  # fmt: skip
        response = olga.post(url, json=payload)
        assert response.status_code == 400, payload
        assert response.get_json()["message"]
    assert olga.post(url, json={"expires_in_days": 90}).status_code == 201
    monkeypatch.setattr(shares, "MAX_ACTIVE_PER_RUN", 2)
    assert olga.post(url).status_code == 201
    refused = olga.post(url)
    assert refused.status_code == 429 and "revoke one" in refused.get_json()["message"]
    assert olga.get("/api/logs/shares/" + "x" * 65).status_code == 404


# --- log quota enforced --------------------------------------------------------------------


def test_log_quota_refuses_new_runs(ready_app, make_user, api):
    from manager.extensions import db
    from manager.models import Execution

    user_id = make_user("quinn", "operator")
    quinn = api("quinn")
    sid = script_id(ready_app, "calculator.py")
    ready_app.config["SM_LOG_QUOTA_MB"] = 1
    with ready_app.app_context():
        db.session.add(
            Execution(
                script_id=sid,
                user_id=user_id,
                execution_uuid="quota-filler-0000",
                status="completed",
                start_time=utcnow(),
                output="q" * (1024 * 1024 + 10),
            )
        )
        db.session.commit()
    refused = quinn.post(f"/api/scripts/{sid}/execute", json={})
    assert refused.status_code == 507
    body = refused.get_json()
    assert "SM_LOG_QUOTA_MB" in body["message"] and "1 MB log quota" in body["message"]
    assert "1.0 MB" in body["message"]  # the usage
    assert body["limit"] == "log_quota" and body["used_bytes"] > body["quota_bytes"]
    ready_app.config["SM_LOG_QUOTA_MB"] = 2  # room again
    started = quinn.post(f"/api/scripts/{sid}/execute", json={})
    assert started.status_code == 201, started.get_json()


def test_log_quota_check_reads_the_settings(world):
    from manager.extensions import db
    from manager.logs.quota import check_log_quota
    from manager.models import User
    from manager.sessions.service import SessionError

    world.run("olga", output="o" * 600_000)  # row and file: about 1.2 MB
    config = dict(world.app.config)
    with world.app.app_context():
        olga = db.session.get(User, world.users["olga"])
        ivan = db.session.get(User, world.users["ivan"])
        check_log_quota(db.session, olga, {**config, "SM_LOG_QUOTA_MB": 2})  # under: no error
        check_log_quota(db.session, olga, {**config, "SM_LOG_QUOTA_MB": 0})  # 0: no quota
        with pytest.raises(SessionError) as refused:
            check_log_quota(db.session, olga, {**config, "SM_LOG_QUOTA_MB": 1})
        assert refused.value.status == 507 and "1.1 MB of your 1 MB" in refused.value.message
        check_log_quota(db.session, ivan, {**config, "SM_LOG_QUOTA_MB": 1})  # per user
