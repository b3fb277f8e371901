"""With its database unreachable, the manager answers 503 and a clear message, fast: JSON for
the API, a page for the browser; never a 500. (The real outage under a serving manager, with a
run going, is test_database_outage.py.)"""

from __future__ import annotations

import pytest

from tests.support.serve import free_port


@pytest.fixture
def cut_off_app(app_config: dict):
    """An app whose PostgreSQL address refuses connections (nothing listens on the port)."""
    from manager import create_app

    url = f"postgresql://sm_test:sm_test@127.0.0.1:{free_port()}/sm_test_unreachable"
    return create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url})


def logged_in(app):
    """A client whose session cookie names user 1: loading it needs the database."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"
        session["_fresh"] = True
    return client


@pytest.mark.parametrize("path", ["/api/script-groups", "/api/executions/x", "/api/sessions"])
def test_the_api_answers_503_with_the_reason(cut_off_app, path):
    response = logged_in(cut_off_app).get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["error"] == 503 and "database cannot be reached" in body["message"]


@pytest.mark.parametrize("path", ["/", "/account", "/logs", "/no-such-page"])
def test_pages_answer_503_with_a_readable_page(cut_off_app, path):
    response = logged_in(cut_off_app).get(path, headers={"Accept": "text/html"})
    page = response.get_data(as_text=True)
    if path == "/no-such-page":  # its 404 page must not need the database either
        assert response.status_code == 404 and "<html" in page, page[:300]
        return
    assert response.status_code == 503, response.status_code
    assert "database cannot be reached" in page and "Traceback" not in page


def test_a_post_answers_503_not_a_csrf_or_server_error(cut_off_app):
    client = cut_off_app.test_client()
    response = client.post("/api/auth/login", json={"username": "a", "password": "b"})
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
