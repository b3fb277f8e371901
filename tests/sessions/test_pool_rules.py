"""The warm pool's rules without an engine: the pooled spec is the cold one but for the context,
and the pool size an admin sets is 0..10 (0 by default), with a clear 400 otherwise."""

from __future__ import annotations

import pytest

from manager.sessions.limits import Limits
from manager.sessions.pool import PoolSizeError, parse_pool_size, pool_key
from manager.sessions.spec import (
    CONTEXT_FILE,
    LABEL_POOL_SLOT,
    POOL_CONTEXT_DIR,
    POOL_CONTEXT_FILE,
    build_pool_spec,
    build_spec,
)
from tests.support.catalog import group_id

LIMITS = Limits(memory="300m", cpus=0.5, pids=50, tmpfs="16m", network="none")


def test_the_pooled_spec_is_the_cold_spec_but_for_the_context():
    common = dict(image="img:1", script_host_dir="/g/eng", workspace_host_dir="/d/ws",
                  limits=LIMITS, user_id=3, project_id=7, instance="i")  # fmt: skip
    cold = build_spec(execution_uuid="0" * 32, script_filename="a.py",
                      context_host_file="/d/ctx.json", script_id=9, interactive=True,
                      **common)  # fmt: skip
    pooled = build_pool_spec(slot="ab12", slot_host_dir="/d/pool/ab12", group_id=2,
                             interactive=True, **common)  # fmt: skip
    for field in ("image", "user", "memory", "cpus", "pids", "tmpfs_size", "network", "port",
                  "log_max_size", "command"):  # fmt: skip
        assert getattr(pooled, field) == getattr(cold, field), field
    cold_mounts = {m.target: m for m in cold.mounts}
    pooled_mounts = {m.target: m for m in pooled.mounts}
    assert pooled_mounts["/scripts"] == cold_mounts["/scripts"]
    assert pooled_mounts["/workspace"] == cold_mounts["/workspace"]
    assert CONTEXT_FILE not in pooled_mounts
    assert pooled_mounts[POOL_CONTEXT_DIR].source == "/d/pool/ab12"
    assert pooled_mounts[POOL_CONTEXT_DIR].read_only
    assert pooled.environment == {"SM_CONTEXT_FILE": POOL_CONTEXT_FILE, "SM_CONTEXT_WAIT": "1"}
    assert pooled.labels[LABEL_POOL_SLOT] == "ab12"
    assert pooled.execution_uuid == "pool-ab12"
    # A batch standby of a "none" group gets no network, as a cold batch run.
    batch = build_pool_spec(slot="cd34", slot_host_dir="/d/pool/cd34", group_id=2,
                            interactive=False, **common)  # fmt: skip
    assert batch.network == "none"


def test_the_pool_key_changes_with_the_image_limits_and_network():
    key = pool_key("img:1", LIMITS, "none")
    assert key == pool_key("img:1", Limits(**LIMITS.to_dict()), "none")
    assert key != pool_key("img:2", LIMITS, "none")
    assert key != pool_key("img:1", Limits(**{**LIMITS.to_dict(), "memory": "301m"}), "none")
    assert key != pool_key("img:1", LIMITS, "internal")


@pytest.mark.parametrize("value", [-1, 11, "x", 1.5, True, None, "3.0"])
def test_pool_sizes_outside_0_to_10_are_refused(value):
    with pytest.raises(PoolSizeError, match="pool_size"):
        parse_pool_size(value)


def test_admins_set_the_pool_size_in_the_group_limits(ready_app, make_user, api):
    make_user("ada", "admin")
    make_user("olga", "operator")
    gid = group_id(ready_app, "engineering_tools")
    ada = api("ada")
    assert ada.get(f"/api/script-groups/{gid}/limits").get_json()["pool_size"] == 0
    for bad in (11, -1, "many"):
        refused = ada.put(f"/api/script-groups/{gid}/limits", json={"pool_size": bad})
        assert refused.status_code == 400
        body = refused.get_json()
        assert body["field"] == "pool_size" and "from 0 to 10" in body["message"], body
    saved = ada.put(f"/api/script-groups/{gid}/limits", json={"pool_size": 2, "memory": "300m"})
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert body["pool_size"] == 2 and body["effective"]["memory"] == "300m"
    assert (
        ada.put(f"/api/script-groups/{gid}/limits", json={"pool_size": None}).get_json()[
            "pool_size"
        ]
        == 0
    )
    olga = api("olga")
    assert olga.put(f"/api/script-groups/{gid}/limits", json={"pool_size": 1}).status_code == 403


def _runner_context():
    import importlib
    import sys
    from pathlib import Path

    runner = str(Path(__file__).resolve().parents[2] / "runner-image")
    if runner not in sys.path:
        sys.path.insert(0, runner)
    return importlib.import_module("smrunner.context")


def test_a_standby_runner_waits_for_its_context_and_a_cold_one_does_not(tmp_path, monkeypatch):
    import json
    import threading
    import time

    context = _runner_context()
    path = tmp_path / "context.json"
    monkeypatch.delenv("SM_CONTEXT_WAIT", raising=False)
    with pytest.raises(context.ContextError, match="cannot read"):
        context.load_context(path)  # cold: a missing file is an error at once

    monkeypatch.setenv("SM_CONTEXT_WAIT", "1")
    monkeypatch.setattr(context, "_preload", lambda: None)  # no Flask import in this test

    def write_later() -> None:
        time.sleep(0.3)
        partial = tmp_path / ".partial"
        partial.write_text(json.dumps({"script_path": "/scripts/a.py"}), encoding="utf-8")
        partial.replace(path)

    writer = threading.Thread(target=write_later)
    began = time.monotonic()
    writer.start()
    loaded = context.load_context(path)
    waited = time.monotonic() - began
    writer.join()
    assert loaded.script_path == "/scripts/a.py"
    assert 0.25 < waited < 2
