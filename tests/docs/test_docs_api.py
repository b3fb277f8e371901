"""GET/PUT /api/scripts/{id}/description-long, the preview, status and examples endpoints."""

from __future__ import annotations

import pytest

from manager.docs.render import MAX_MARKDOWN_CHARS

# Below developer: anonymous callers fail the CSRF check first (400), the others get 403.
REFUSED = [(None, 400), ("viewer", 403), ("operator", 403)]


def test_read_in_a_language_with_english_fallback(docs_app, api, ids):
    reader = api("operator")
    es = reader.get(f"/api/scripts/{ids['csv']}/description-long?lang=es&format=html").get_json()
    assert es["language"] == "es" and not es["fallback"]
    assert es["path"] == "docs/csv_summary_es.md"
    assert set(es["available_languages"]) == {"en", "es", "it", "fr"}
    assert "<table>" in es["html"] and es["toc"]
    units = reader.get(f"/api/scripts/{ids['units']}/description-long?lang=fr").get_json()
    assert units["language"] == "en" and units["fallback"] and units["requested_language"] == "fr"
    assert "html" not in units and "template" not in units


def test_bad_language_and_unknown_script(docs_app, api, ids):
    reader = api("operator")
    response = reader.get(f"/api/scripts/{ids['csv']}/description-long?lang=de")
    assert response.status_code == 400 and "unknown language" in response.get_json()["message"]
    assert reader.get("/api/scripts/999999/description-long").status_code == 404


def test_put_writes_the_file_audits_and_refreshes(docs_app, api, ids, groups_dir):
    developer = api("developer")
    response = developer.put(
        f"/api/scripts/{ids['units']}/description-long",
        json={"language": "it", "markdown": "# Convertitore\n\nCiao."},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["language"] == "it" and body["path"] == "docs/unit_converter_it.md"
    written = groups_dir / "data_processing" / "docs" / "unit_converter_it.md"
    assert written.read_text(encoding="utf-8") == "# Convertitore\n\nCiao.\n"
    # Discovery sees the new file at once: the group page offers it.
    meta = developer.get(f"/api/scripts/{ids['units']}/metadata").get_json()
    assert meta["description_long"]["it"] == "docs/unit_converter_it.md"
    history = developer.get(f"/api/scripts/{ids['units']}/history").get_json()["history"]
    assert history[0]["kind"] == "document" and history[0]["before"] is None
    assert history[0]["after"] == "# Convertitore\n\nCiao."


@pytest.mark.parametrize("who, status", REFUSED)
def test_put_refused_below_developer(docs_app, api, ids, groups_dir, who, status):
    client = api(who)
    before = (groups_dir / "data_processing" / "docs" / "csv_summary.md").read_text()
    response = client.put(
        f"/api/scripts/{ids['csv']}/description-long", json={"language": "en", "markdown": "x"}
    )
    assert response.status_code == status
    assert (groups_dir / "data_processing" / "docs" / "csv_summary.md").read_text() == before


def test_put_without_csrf_is_refused(docs_app, api, ids):
    developer = api("developer")
    response = developer.client.put(
        f"/api/scripts/{ids['csv']}/description-long", json={"language": "en", "markdown": "x"}
    )
    assert response.status_code == 400 and "security token" in response.get_json()["message"]


def test_put_limits_and_bad_bodies(docs_app, api, ids):
    developer = api("developer")
    url = f"/api/scripts/{ids['csv']}/description-long"
    too_long = developer.put(
        url, json={"language": "en", "markdown": "a" * (MAX_MARKDOWN_CHARS + 1)}
    )
    assert too_long.status_code == 413 and "200,000" in too_long.get_json()["message"]
    assert (
        developer.put(
            url, json={"language": "en", "markdown": "a" * MAX_MARKDOWN_CHARS}
        ).status_code
        == 200
    )
    assert developer.put(url, json={"language": "en"}).status_code == 400
    assert developer.put(url, json={"language": "xx", "markdown": "a"}).status_code == 400


def test_put_refuses_a_header_path_outside_docs(docs_app, api, ids, groups_dir):
    """A header may point a language at any .md in the group; writes go to docs/ only."""
    admin = api("admin")
    response = admin.put(
        f"/api/scripts/{ids['csv']}/metadata", json={"description_long": {"fr": "README.md"}}
    )
    assert response.status_code == 200, response.get_json()
    refused = admin.put(
        f"/api/scripts/{ids['csv']}/description-long", json={"language": "fr", "markdown": "x"}
    )
    assert refused.status_code == 403 and "docs/" in refused.get_json()["message"]
    assert not (groups_dir / "data_processing" / "README.md").exists()


def test_put_refuses_a_symlink_out_of_docs(docs_app, api, ids, groups_dir, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("secret")
    link = groups_dir / "data_processing" / "docs" / "unit_converter_es.md"
    link.symlink_to(outside)
    response = api("developer").put(
        f"/api/scripts/{ids['units']}/description-long", json={"language": "es", "markdown": "x"}
    )
    assert response.status_code == 403
    assert outside.read_text() == "secret"


def test_template_offered_to_developers_when_missing(docs_app, api, ids, groups_dir):
    (groups_dir / "data_processing" / "docs" / "unit_converter.md").unlink()
    developer = api("developer")
    body = developer.get(f"/api/scripts/{ids['units']}/description-long?lang=en").get_json()
    assert not body["exists"] and body["template"].startswith("# ")
    assert "## Parameters" in body["template"]
    spanish = developer.get(f"/api/scripts/{ids['units']}/description-long?lang=es").get_json()
    assert "## Parámetros" in spanish["template"]
    viewer_body = api("operator").get(f"/api/scripts/{ids['units']}/description-long").get_json()
    assert "template" not in viewer_body


def test_preview_renders_sanitised_with_resolved_links(docs_app, api, ids):
    developer = api("developer")
    response = developer.post(
        "/api/docs/render",
        json={
            "script_id": ids["csv"],
            "markdown": "[units](unit_converter.md#usage) <script>x()</script> ![p](img/a.png)",
        },
    )
    html = response.get_json()["html"]
    assert f'href="/scripts/{ids["units"]}/docs?lang=en#doc-usage"' in html
    assert f'src="/groups/{ids["data_group"]}/doc-images/img/a.png"' in html
    assert "<script" not in html


@pytest.mark.parametrize("who, status", REFUSED)
def test_preview_refused_below_developer(docs_app, api, ids, who, status):
    response = api(who).post("/api/docs/render", json={"script_id": ids["csv"], "markdown": "x"})
    assert response.status_code == status


def test_preview_limits(docs_app, api, ids):
    developer = api("developer")
    big = developer.post(
        "/api/docs/render",
        json={"script_id": ids["csv"], "markdown": "a" * (MAX_MARKDOWN_CHARS + 1)},
    )
    assert big.status_code == 413
    assert developer.post("/api/docs/render", json={"markdown": "x"}).status_code == 400


def test_status_lists_missing_languages_for_admins_only(docs_app, api, ids):
    rows = api("admin").get("/api/docs/status").get_json()["scripts"]
    units = next(r for r in rows if r["script_id"] == ids["units"])
    assert units["languages"] == ["en"] and units["missing"] == ["es", "it", "fr"]
    csv = next(r for r in rows if r["script_id"] == ids["csv"])
    assert csv["missing"] == []
    assert api("developer").get("/api/docs/status").status_code == 403


def test_examples_listed_and_downloadable(docs_app, api, ids, client):
    reader = api("operator")
    listed = reader.get(f"/api/script-groups/{ids['data_group']}/examples").get_json()
    names = [e["name"] for e in listed["examples"]]
    assert "line_readings.csv" in names
    download = reader.get(listed["examples"][names.index("line_readings.csv")]["url"])
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.data.startswith(b"date,line,")
    for bad in ("../metadata.json", "..%2Fmetadata.json", "missing.csv"):
        response = reader.get(f"/groups/{ids['data_group']}/examples/{bad}")
        assert response.status_code == 404, bad


def test_a_document_is_hidden_below_its_scripts_level(docs_app, api, ids):
    viewer = api("viewer")
    assert viewer.get(f"/api/scripts/{ids['csv']}/description-long").status_code == 404
    assert viewer.get(f"/api/script-groups/{ids['data_group']}/examples").status_code == 404
    assert viewer.get(f"/groups/{ids['data_group']}/examples/line_readings.csv").status_code == 404
