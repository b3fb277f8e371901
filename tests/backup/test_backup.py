"""Backups: the round trip (back up, destroy, restore: everything back byte for byte) on the
suite's database engine, a backup taken while runs write output, exactly-once scheduling, the
size maximum, exclusions and retention, and the API's refusals."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tarfile
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, insert

from manager.backup import archive, scheduler
from manager.backup.service import BackupSettings, create_backup, list_backups
from manager.extensions import Base, db
from manager.models import Execution
from tests.backup.conftest import files_snapshot, rows_snapshot


def settings_of(app, **changes) -> BackupSettings:
    values = {**app.config, **changes}
    return BackupSettings.from_config(values)


def destroy(app) -> None:
    """Lose everything: every row, the data folder, the run logs."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(delete(table))
    shutil.rmtree(Path(app.config["SM_DATA_DIR"]) / "script_groups")
    shutil.rmtree(Path(app.config["SM_LOG_DIR"]) / "executions")


def test_round_trip_restores_every_row_and_file(app, world, api):
    data, logs = Path(app.config["SM_DATA_DIR"]), Path(app.config["SM_LOG_DIR"])
    root = api("root")
    rows_before = rows_snapshot(app)
    files_before = files_snapshot(data / "script_groups", logs / "executions")
    assert rows_before["execution_logs"] and rows_before["users"]

    made = root.post("/api/system/backup")
    assert made.status_code == 201, made.get_json()
    backup = made.get_json()["backup"]
    assert backup["file"].startswith("data_backup_") and backup["date"] in backup["path"]
    assert made.get_json()["log_files"] == 2

    destroy(app)
    # The CLI's way (no manager running on it, the database empty): no confirmation needed.
    from manager.backup.restore import restore_in_place

    with app.app_context():
        report = restore_in_place(settings_of(app), backup["date"], engine=db.engine)
    assert report.database_restored and report.log_files == 2

    rows_after = rows_snapshot(app)
    assert rows_after.pop("job_locks")[0][1] is None  # the backup's own lock, freed
    rows_before.pop("job_locks")
    assert rows_after == rows_before
    restored = files_snapshot(data / "script_groups", logs / "executions")
    expected = {name: digest for name, digest in files_before.items() if not name.endswith(".tmp")}
    assert restored == expected  # byte for byte, less the excluded *.tmp


def test_restore_in_place_over_a_live_manager_needs_confirmation(app, world, api):
    root = api("root")
    backup = root.post("/api/system/backup").get_json()["backup"]
    world.run("olga", output="made after the backup")

    refused = root.post("/api/system/restore", json={"backup": backup["date"]})
    assert refused.status_code == 409
    assert "Confirm" in refused.get_json()["message"] and refused.get_json()["needs_confirmation"]
    with app.app_context():
        assert db.session.query(Execution).count() == 3  # nothing restored

    done = root.post("/api/system/restore", json={"backup": backup["file"], "confirm": True})
    assert done.status_code == 200, done.get_json()
    with app.app_context():
        db.session.remove()
        assert db.session.query(Execution).count() == 2


def test_restore_into_a_folder_gives_a_runnable_copy(app, world, api, tmp_path):
    root = api("root")
    backup = root.post("/api/system/backup").get_json()["backup"]
    target = tmp_path / "copy"
    done = root.post("/api/system/restore", json={"backup": backup["date"], "target": str(target)})
    assert done.status_code == 200, done.get_json()
    assert (target / "logs" / "executions").is_dir()
    assert list((target / "data" / "script_groups").rglob("result.csv"))
    if done.get_json()["engine"] == "sqlite":
        copy = sqlite3.connect(target / "data" / "scriptsmanager.db")
        assert copy.execute("SELECT count(*) FROM execution_logs").fetchone() == (2,)
        copy.close()
    else:
        assert (target / "database" / "postgresql.dump").stat().st_size > 0

    again = root.post("/api/system/restore", json={"backup": backup["date"], "target": str(target)})
    assert again.status_code == 409 and "not empty" in again.get_json()["message"]
    relative = root.post("/api/system/restore", json={"backup": backup["date"], "target": "x"})
    assert relative.status_code == 400


def test_backup_taken_while_runs_write_is_consistent(app, world):
    """A writer appends log lines and inserts runs during the backup: the archive holds a
    prefix of each file and a database dump that opens, with whole rows only."""
    log_file = world.file_of(world.run("olga", output="start"))
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        n = 0
        with log_file.open("a", encoding="utf-8") as handle:
            while not stop.is_set() and n < 5000:
                handle.write(f"line {n:06d} " + "x" * 200 + "\n")
                handle.flush()
                if n % 50 == 0:
                    with engine.begin() as conn:
                        conn.execute(
                            insert(Execution).values(
                                user_id=world.users["olga"],
                                execution_uuid=f"00000000-0000-0000-0000-{n:012d}",
                                status="completed",
                                start_time=datetime(2026, 1, 1),
                                output="x" * 1000,
                            )
                        )
                n += 1
        written.append(n)
        engine.dispose()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with app.app_context():
            result = create_backup(settings_of(app, SM_COMPRESS_BACKUPS=False))
    finally:
        stop.set()
        writer.join()
    final = log_file.read_bytes()
    name = (
        "logs/executions/"
        + log_file.relative_to(Path(app.config["SM_LOG_DIR"]) / "executions").as_posix()
    )
    with tarfile.open(result.backup.path) as tar:
        taken = tar.extractfile(name).read()
        manifest = json.loads(tar.extractfile("manifest.json").read())
        dump_member = tar.getmember(f"database/{manifest['database_file']}")
        assert dump_member.size > 0
        if manifest["engine"] == "sqlite":
            tar.extract(dump_member, Path(result.backup.path).parent, filter="data")
    assert final.startswith(taken)  # a prefix: nothing torn, nothing from elsewhere
    if manifest["engine"] == "sqlite":
        copy = sqlite3.connect(Path(result.backup.path).parent / "database" / "scriptsmanager.db")
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        outputs = copy.execute("SELECT length(output) FROM execution_logs WHERE id > 3").fetchall()
        assert all(row == (1000,) for row in outputs)  # whole rows only
        copy.close()


def test_daily_backup_runs_exactly_once_across_processes(app, world):
    """Four 'processes' (engines of their own) wake up for the same day: one backs up."""
    settings = settings_of(app)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    results: list[object] = []
    barrier = threading.Barrier(4)

    def process(index: int) -> None:
        engine = create_engine(url)
        barrier.wait()
        results.append(
            scheduler.run_backup(
                engine, settings, period="2026-03-01", reason="daily", holder=f"p{index}"
            )
        )
        engine.dispose()

    threads = [threading.Thread(target=process, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1
    assert len(list_backups(settings)) == 1
    with app.app_context():  # later that day, or after a restart: still done
        assert scheduler.run_backup(db.engine, settings, period="2026-03-01") is None
        assert scheduler.run_backup(db.engine, settings, period="2026-03-02") is not None


def test_size_maximum_stops_the_backup_and_leaves_nothing(app, world, api):
    app.config["SM_MAX_BACKUP_SIZE_GB"] = 2e-6  # about 2 KiB
    root = api("root")
    refused = root.post("/api/system/backup")
    assert refused.status_code == 507
    body = refused.get_json()
    assert "SM_MAX_BACKUP_SIZE_GB" in body["message"] and body["limit"] == "max_backup_size"
    backup_dir = Path(app.config["SM_BACKUP_DIR"])
    assert not list(backup_dir.rglob("*.tar.gz*"))
    log_text = "".join(p.read_text() for p in (backup_dir / "backup_logs").glob("*.log"))
    assert "FAILED" in log_text
    status = root.get("/api/system/backup-status").get_json()
    assert status["last_attempt"]["ok"] is False and status["last_backup"] is None


def test_exclusions_retention_and_the_run_log(app, world):
    backup_dir = Path(app.config["SM_BACKUP_DIR"])
    old = backup_dir / "2020-01-01"
    old.mkdir(parents=True)
    (old / "data_backup_20200101_020000.tar.gz").write_bytes(b"old")
    settings = settings_of(app, SM_BACKUP_EXCLUDE_PATTERNS=["*.tmp", "*.bin"])
    result = create_backup(settings, now=datetime(2026, 5, 4, 2, 0, 0))
    assert result.removed_by_retention == ["2020-01-01"] and not old.exists()
    assert result.backup.path.endswith("2026-05-04/data_backup_20260504_020000.tar.gz")
    with tarfile.open(result.backup.path) as tar:
        names = tar.getnames()
    assert any(n.endswith("result.csv") for n in names)
    assert not any(n.endswith((".tmp", ".bin")) for n in names)
    assert not any(n.startswith("data/scriptsmanager.db") for n in names)  # the dump instead
    log_text = (backup_dir / "backup_logs" / "backup_20260504.log").read_text()
    assert "backup started" in log_text and "backup done" in log_text
    # A second one the same second gets a name of its own.
    again = create_backup(settings, now=datetime(2026, 5, 4, 2, 0, 0))
    assert again.backup.file == "data_backup_20260504_020000_2.tar.gz"
    assert archive.read_manifest(Path(again.backup.path))["format"] == archive.FORMAT


def test_backup_api_lists_deletes_and_reports_status(app, world, api):
    root = api("root")
    root.post("/api/system/backup")
    listed = root.get("/api/system/backups").get_json()
    assert listed["total"] == 1
    day = listed["backups"][0]["date"]
    status = root.get("/api/system/backup-status").get_json()
    assert status["last_backup"]["date"] == day and status["disk"]["free_bytes"] > 0
    assert status["next_backup"] > datetime.now().isoformat()

    assert root.delete("/api/system/backups/2026-13-40").status_code == 400
    assert root.delete("/api/system/backups/..%2Fdata").status_code in (400, 404)
    assert root.delete("/api/system/backups/1999-01-01").status_code == 404
    gone = root.delete(f"/api/system/backups/{day}")
    assert gone.status_code == 200 and gone.get_json()["files"]
    assert root.get("/api/system/backups").get_json()["total"] == 0
    missing = root.post("/api/system/restore", json={"backup": day, "confirm": True})
    assert missing.status_code == 404
    assert root.post("/api/system/restore", json={}).status_code == 400


@pytest.mark.parametrize(
    "method,url",
    [
        ("post", "/api/system/backup"),
        ("get", "/api/system/backups"),
        ("delete", "/api/system/backups/2026-01-01"),
        ("get", "/api/system/backup-status"),
        ("post", "/api/system/restore"),
        ("post", "/api/system/discover"),
    ],
)
def test_backup_api_is_for_admins_only(app, world, api, method, url):
    # Anonymous: 401, or the CSRF check's 400 first on a state change.
    assert getattr(api(), method)(url).status_code == (401 if method == "get" else 400)
    assert getattr(api("dora"), method)(url, json={}).status_code == 403


def test_cli_backs_up_lists_and_restores_only_when_told(app, world, monkeypatch, capsys):
    from manager.cli import main

    for key, name in (
        ("SM_DATA_DIR", "SM_DATA_DIR"),
        ("SM_LOG_DIR", "SM_LOG_DIR"),
        ("SM_BACKUP_DIR", "SM_BACKUP_DIR"),
        ("SQLALCHEMY_DATABASE_URI", "DATABASE_URL"),
        ("SM_SCRIPT_GROUPS_DIR", "SM_SCRIPT_GROUPS_DIR"),
    ):
        monkeypatch.setenv(name, str(app.config[key]))
    monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-that-is-long-enough-0123")
    assert main(["backup", "create"]) == 0
    assert ".tar.gz" in capsys.readouterr().out
    assert main(["backup", "list"]) == 0
    day = capsys.readouterr().out.split()[0]
    assert main(["backup", "restore", day]) == 3  # the database holds users: asks first
    assert "--yes" in capsys.readouterr().err
    assert main(["backup", "restore", day, "--yes"]) == 0
    assert main(["backup", "delete", "not-a-date"]) == 1
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_next_run_and_heartbeat_mark_a_running_manager(app):
    from manager.backup.restore import manager_running

    with app.app_context():
        assert not manager_running(db.engine)
        scheduler.beat(db.engine)
        assert manager_running(db.engine)
        later = datetime.utcnow() + timedelta(minutes=10)
        assert not manager_running(db.engine, now=later)
