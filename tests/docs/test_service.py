"""The document service's limits and paths: examples cap, history cap, images from docs/ only."""

from __future__ import annotations

from manager.catalog.history import HISTORY_LIMIT, history, script_target
from manager.docs.service import MAX_EXAMPLES, list_examples


def test_examples_listing_stops_at_its_cap_and_hides_dotfiles(docs_app, groups_dir):
    from manager.extensions import db
    from manager.models import ScriptGroup

    folder = groups_dir / "data_processing" / "examples"
    for n in range(MAX_EXAMPLES + 5):
        (folder / f"sample_{n:04d}.csv").write_text("a\n")
    (folder / ".hidden.csv").write_text("secret\n")
    with docs_app.app_context():
        group = db.session.query(ScriptGroup).filter_by(directory_path="data_processing").one()
        found = list_examples(groups_dir, group)
    assert len(found) == MAX_EXAMPLES
    assert all(not e.name.startswith(".") for e in found)


def test_history_returns_at_most_its_limit_newest_first(docs_app, ids):
    from manager import audit
    from manager.extensions import db
    from manager.models import Script

    with docs_app.app_context():
        script = db.session.get(Script, ids["csv"])
        for n in range(HISTORY_LIMIT + 3):
            audit.record(
                db.session, "script_metadata_updated", target=script_target(script),
                details={"changes": {"category": {"before": n, "after": n + 1}}},
            )  # fmt: skip
        db.session.commit()
        entries = history(db.session, script)
    assert len(entries) == HISTORY_LIMIT
    assert entries[0].details["changes"]["category"]["after"] == HISTORY_LIMIT + 3


def test_doc_images_are_served_from_docs_only(docs_app, api, ids, groups_dir):
    docs = groups_dir / "data_processing" / "docs"
    (docs / "img").mkdir()
    (docs / "img" / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (docs / "img" / "evil.svg").write_text('<svg onload="alert(1)"/>')
    reader = api("operator")
    base = f"/groups/{ids['data_group']}/doc-images"
    ok = reader.get(f"{base}/img/chart.png")
    assert ok.status_code == 200 and ok.mimetype == "image/png"
    for bad in ("img/evil.svg", "../metadata.json", "../csv_summary.py", "img/missing.png"):
        assert reader.get(f"{base}/{bad}").status_code == 404, bad
    assert api("viewer").get(f"{base}/img/chart.png").status_code == 404
