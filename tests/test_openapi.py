"""The OpenAPI description matches the registered /api routes and is served with its docs page."""

from __future__ import annotations

from manager.openapi.spec import OPERATIONS, api_routes


def test_every_api_route_is_described_and_every_description_has_a_route(app):
    routes = set(api_routes(app))
    undescribed = sorted(routes - set(OPERATIONS))
    stale = sorted(set(OPERATIONS) - routes)
    assert not undescribed, f"add these to manager/openapi/spec.py OPERATIONS: {undescribed}"
    assert not stale, f"these OPERATIONS entries name no route: {stale}"


def test_served_spec_is_valid_openapi_3_1_with_every_operation(client, app):
    from jsonschema import Draft202012Validator

    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    served = {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item}
    assert served == set(api_routes(app))
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(part[1:-1] for part in path.split("/") if part.startswith("{"))
            assert operation["responses"], (method, path)
            for parameter in operation.get("parameters", []):
                Draft202012Validator.check_schema(parameter["schema"])
            for media in operation.get("requestBody", {}).get("content", {}).values():
                Draft202012Validator.check_schema(media["schema"])
            if operation["x-required-role"] != "public":
                assert "401" in operation["responses"], (method, path)


def test_spec_validates_with_schemathesis_loader(app):
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(api_routes(app))


def test_docs_page_loads_swagger_ui_from_local_files_without_inline_script(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "/static/vendor/swagger-ui/swagger-ui.css" in html
    assert "<script>" not in html and "http://" not in html and "https://" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = client.get("/api/openapi-static/api-docs.js")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.data


def test_error_responses_match_the_documented_error_shape(client):
    response = client.get("/api/projects")
    assert response.status_code == 401
    body = response.get_json()
    assert isinstance(body["error"], int) and isinstance(body["message"], str)


def test_links_join_existing_operations_through_their_path_parameters(app):
    from manager.openapi.spec import LINKS

    routes = api_routes(app)
    for source, value, name, targets in LINKS:
        assert source in routes and value.startswith("$response.body#/")
        for target in targets:
            assert name in {p["name"] for p in routes[target]}, (source, target)


def test_ids_past_the_database_integer_are_a_404_not_a_500(api, make_user):
    make_user("ids", "admin")
    client = api("ids")
    for method, url in (
        ("get", "/api/schedules/36893488147419103233"),
        ("delete", "/api/presets/6616394505"),
        ("put", "/api/projects/2147483648"),
    ):
        response = getattr(client, method)(url, json={})
        assert response.status_code == 404, (method, url)
        assert "nothing with id" in response.get_json()["message"]
    response = client.post("/api/schedules", json={"script_id": 2**70, "cron": "0 * * * *"})
    assert response.status_code == 404


def test_bulk_with_a_nul_in_a_run_id_is_not_a_server_error(api, make_user):
    # Found by Schemathesis on PostgreSQL, which refuses a NUL inside a query's text.
    make_user("bulky", "operator")
    response = api("bulky").post(
        "/api/logs/bulk", json={"action": "delete", "execution_ids": ["a\x00b", "x" * 500]}
    )
    assert response.status_code == 200  # nothing of mine: nothing deleted, both ids named
    body = response.get_json()
    assert sorted(body["not_found"]) == sorted(["a\x00b", "x" * 500]), body
