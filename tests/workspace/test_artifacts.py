"""Run artifacts: the files a run created or changed, never those of a later run."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from manager.models import Execution
from tests.support.catalog import script_id


def _run(db, script, user_id, project_id, start, end, uuid) -> Execution:
    execution = Execution(
        script_id=script,
        user_id=user_id,
        project_id=project_id,
        execution_uuid=uuid,
        status="completed",
        start_time=start,
        end_time=end,
    )
    db.session.add(execution)
    db.session.commit()
    return execution


def _touch(path: Path, moment: datetime, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = moment.replace(tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


def test_each_run_lists_what_it_wrote_and_the_api_returns_it(ready_app, make_user, api):
    from manager.extensions import db
    from manager.models import Script

    uid = make_user("olga", "operator")
    olga = api("olga")
    project = olga.get("/api/projects/active").get_json()["project"]["id"]
    sid = script_id(ready_app, "csv_summary.py")
    t0 = datetime(2026, 1, 1, 10, 0, 0)
    with ready_app.app_context():
        group_dir = db.session.get(Script, sid).group.directory_path
        root = Path(ready_app.config["SM_DATA_DIR"]) / "script_groups" / group_dir / str(uid)
        root = root / str(project)
        _touch(root / "before.txt", t0 - timedelta(minutes=1))
        _touch(root / "out" / "first.csv", t0 + timedelta(seconds=5))
        _touch(root / "shared.txt", t0 + timedelta(seconds=8))
        _run(db, sid, uid, project, t0, t0 + timedelta(seconds=10), "a" * 36)
        later = t0 + timedelta(minutes=5)
        _run(db, sid, uid, project, later, later + timedelta(seconds=10), "b" * 36)
        _touch(root / "second.txt", later + timedelta(seconds=2))
    first = olga.get(f"/api/logs/execution/{'a' * 36}").get_json()
    paths = {a["path"]: a for a in first["artifacts"]}
    assert set(paths) == {"out/first.csv", "shared.txt"}
    assert paths["out/first.csv"]["current"] and paths["out/first.csv"]["download_url"]
    assert olga.get(paths["out/first.csv"]["download_url"]).data == b"x"
    # The later run rewrites shared.txt: it is listed for the later run only, and the first
    # run's (recorded) list says the file changed since.
    with ready_app.app_context():
        _touch(root / "shared.txt", later + timedelta(seconds=3), "later")
    second = olga.get(f"/api/logs/execution/{'b' * 36}").get_json()
    assert {a["path"] for a in second["artifacts"]} == {"second.txt", "shared.txt"}
    again = {a["path"]: a for a in olga.get(f"/api/logs/execution/{'a' * 36}").get_json()[
        "artifacts"
    ]}  # fmt: skip
    assert set(again) == {"out/first.csv", "shared.txt"}
    assert again["shared.txt"]["current"] is False and again["shared.txt"]["exists"] is True
    own = olga.get(f"/api/executions/{'b' * 36}/artifacts").get_json()["artifacts"]
    assert {a["path"] for a in own} == {"second.txt", "shared.txt"}
    make_user("bob", "operator")
    assert api("bob").get(f"/api/executions/{'b' * 36}/artifacts").status_code == 404
    page = olga.get(f"/logs/{'a' * 36}")
    assert b'data-sm="artifact"' in page.data and b"out/first.csv" in page.data
