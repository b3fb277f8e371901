"""The personal features' test world: the examples, a script with a secret, four users."""

from __future__ import annotations

from pathlib import Path

import pytest

SECRET_SCRIPT = '''"""
ScriptsManager Metadata:
@description: uploads a report with a token
@required_level: operator
@tags: upload,report
@parameters: [
    {"name": "target", "type": "string", "required": true},
    {"name": "retries", "type": "int", "min": 0, "max": 5, "default": 1},
    {"name": "token", "type": "secret"}
]
"""
print("uploading to", PARAMETERS["target"])
'''


@pytest.fixture
def world(fake, app, groups_dir: Path, make_user):
    """The catalog discovered (with data_processing/secret_upload.py) and four users."""
    from manager.catalog_app import run_discovery
    from manager.extensions import db
    from manager.models import Script

    (groups_dir / "data_processing" / "secret_upload.py").write_text(SECRET_SCRIPT)
    run_discovery(app)
    app.extensions["sm_sessions"].monitor.health_check = lambda host, port: True
    users = {
        level: make_user(level, level) for level in ("viewer", "operator", "developer", "admin")
    }
    with app.app_context():
        scripts = {s.filename: s.id for s in db.session.query(Script).all()}
    return {"users": users, "scripts": scripts}
