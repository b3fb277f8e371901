"""Workspaces and log folders are keyed by user (and project) id, and older folders named
after usernames are moved there by a startup step that is safe to run twice."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from manager.models import Execution, User, UserProject, utcnow
from manager.sessions.fake import FakeScript
from tests.support.catalog import script_id


def workspace_of(fake, execution_id: str) -> Path:
    spec = next(s for s in fake.started if s.execution_uuid == execution_id)
    return Path(next(m.source for m in spec.mounts if m.target == "/workspace"))


def test_a_user_recreated_under_an_old_name_sees_none_of_the_old_files(
    ready_app, make_user, api, fake
):
    from manager.extensions import db
    from manager.logs.store import log_path

    fake.program = FakeScript(exit_code=0, output=("secret report",))
    sid = script_id(ready_app, "unit_converter.py")
    make_user("olga", "operator")
    old_run = api("olga").post(f"/api/scripts/{sid}/execute", json={}).get_json()
    old_workspace = workspace_of(fake, old_run["execution_id"])
    (old_workspace / "salaries.csv").write_text("old olga's data")
    with ready_app.app_context():  # the account goes; its name becomes free again
        db.session.execute(
            update(User)
            .where(User.username == "olga")
            .values(username="gone", email="gone@localhost")
        )
        db.session.commit()
    make_user("olga", "operator")
    new = api("olga")
    new_run = new.post(f"/api/scripts/{sid}/execute", json={}).get_json()
    new_workspace = workspace_of(fake, new_run["execution_id"])
    assert new_workspace != old_workspace
    assert not (new_workspace / "salaries.csv").exists()
    assert new_workspace.parts[-2:] == (str(new_run["user_id"]), str(new_run["project_id"]))
    logs = ready_app.config["SM_LOG_DIR"]
    with ready_app.app_context():
        old_row = db.session.execute(
            select(Execution).where(Execution.execution_uuid == old_run["execution_id"])
        ).scalar_one()
        old_log = log_path(logs, old_row.user_id, old_row.start_time, old_row.execution_uuid)
    assert old_log.parent.parent.name == str(old_run["user_id"])
    assert old_run["user_id"] != new_run["user_id"]
    assert new.get(f"/api/logs/execution/{old_run['execution_id']}").status_code in (403, 404)


def _old_layout(ready_app, make_user, tmp_path: Path):
    """An installation of the old layout: folders named after usernames and project names."""
    from manager.extensions import db

    olga_id = make_user("olga", "operator")
    bob_id = make_user("bob", "operator")
    data = Path(ready_app.config["SM_DATA_DIR"])
    logs = Path(ready_app.config["SM_LOG_DIR"])
    with ready_app.app_context():
        olga_project = UserProject(user_id=olga_id, project_name="pumps", description="")
        bob_project = UserProject(user_id=bob_id, project_name="pumps", description="")
        db.session.add_all([olga_project, bob_project])
        db.session.flush()
        run = str(uuid.uuid4())
        db.session.add(
            Execution(user_id=olga_id, project_id=olga_project.id, execution_uuid=run,
                      status="completed", start_time=utcnow() - timedelta(days=1))
        )  # fmt: skip
        db.session.commit()
        ids = {"olga": olga_id, "bob": bob_id, "olga_project": olga_project.id, "run": run}
        # bob's account is new: the clock of his row says so.
        db.session.execute(
            update(User).where(User.id == bob_id).values(created_at=utcnow() + timedelta(hours=1))
        )
        db.session.commit()
    group = data / "script_groups" / "data_processing"
    (group / "olga" / "pumps").mkdir(parents=True)
    (group / "olga" / "pumps" / "result.csv").write_text("olga's")
    (group / "ghost" / "project_default").mkdir(parents=True)
    (group / "ghost" / "project_default" / "left.txt").write_text("nobody's now")
    # Left by an earlier "bob": older than today's bob.
    earlier = group / "bob" / "pumps"
    earlier.mkdir(parents=True)
    (earlier / "old.txt").write_text("an earlier bob's")
    past = time.time() - 86400
    for path in (earlier / "old.txt", earlier):
        os.utime(path, (past, past))
    day = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d")
    old_log = logs / "executions" / "olga" / day / f"execution_{run}.log"
    old_log.parent.mkdir(parents=True)
    old_log.write_text("log of olga's run\n")
    stray = logs / "executions" / "olga" / day / f"execution_{uuid.uuid4()}.log"
    stray.write_text("no row\n")
    return ids, group, logs, day, stray


def _snapshot(*roots: Path) -> list[str]:
    return sorted(str(p) for root in roots for p in root.rglob("*"))


def test_startup_step_moves_old_folders_to_ids_and_is_safe_twice(ready_app, make_user, tmp_path):
    from manager.extensions import db
    from manager.sessions.layout import migrate_layout

    ids, group, logs, day, stray = _old_layout(ready_app, make_user, tmp_path)
    data = ready_app.config["SM_DATA_DIR"]
    with ready_app.app_context():
        report = migrate_layout(db.session, data, logs)
    moved = group / str(ids["olga"]) / str(ids["olga_project"]) / "result.csv"
    assert moved.read_text() == "olga's"
    assert not (group / "olga").exists()
    # Nobody of that name, and an earlier user of a name: set aside, given to no one.
    assert (group / "_unclaimed" / "ghost" / "project_default" / "left.txt").exists()
    assert (group / "_unclaimed" / "bob" / "pumps" / "old.txt").exists()
    assert not (group / str(ids["bob"])).exists()
    assert (logs / "executions" / str(ids["olga"]) / day / f"execution_{ids['run']}.log").exists()
    assert stray.exists()  # no row says whose it is: left where it was
    assert report.logs_moved == 1 and len(report.workspaces_moved) == 1
    assert len(report.workspaces_unclaimed) == 2
    before = _snapshot(group, logs)
    with ready_app.app_context():
        again = migrate_layout(db.session, data, logs)
    assert _snapshot(group, logs) == before
    assert not again.workspaces_moved and not again.logs_moved and not again.workspaces_unclaimed


def test_startup_step_never_overwrites_and_runs_from_init_db(ready_app, make_user, tmp_path):
    from manager.cli import init_db

    ids, group, logs, day, _ = _old_layout(ready_app, make_user, tmp_path)
    target = group / str(ids["olga"]) / str(ids["olga_project"])
    target.mkdir(parents=True)
    (target / "newer.csv").write_text("already here")
    init_db(ready_app)
    assert (target / "newer.csv").read_text() == "already here"
    assert not (target / "result.csv").exists()
    assert (group / "olga" / "pumps" / "result.csv").exists()  # kept, reported as skipped
    assert (logs / "executions" / str(ids["olga"]) / day / f"execution_{ids['run']}.log").exists()
