"""Per-group limits: defaults, parsing with field-named messages, bounds, admin overrides."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from manager.sessions.limits import Limits, merge, parse_limits, parse_size


def test_defaults() -> None:
    limits = parse_limits(None)
    assert limits == Limits()
    assert limits.to_dict() == {
        "memory": "512m",
        "cpus": 1.0,
        "pids": 128,
        "run_timeout": 14400,
        "idle_timeout": 1800,
        "network": "none",
        "max_sessions_per_user": 5,
        "tmpfs": "64m",
        "workspace_quota": "5g",
    }
    assert parse_limits({}) == Limits()


def test_every_field_parses_and_round_trips() -> None:
    data = {
        "memory": "1G",
        "cpus": 2,
        "pids": "256",
        "run_timeout": "2h",
        "idle_timeout": 600,
        "network": "egress",
        "max_sessions_per_user": 2,
        "tmpfs": "128MB",
        "workspace_quota": "2g",
    }
    limits = parse_limits(data)
    assert limits == Limits(
        memory="1g", cpus=2.0, pids=256, run_timeout=7200, idle_timeout=600,
        network="egress", max_sessions_per_user=2, tmpfs="128m", workspace_quota="2g",
    )  # fmt: skip
    assert parse_limits(limits.to_dict()) == limits
    assert {f.name for f in fields(Limits)} == set(data)


def test_null_fields_take_the_defaults() -> None:
    assert parse_limits({"memory": None, "cpus": 0.5}) == Limits(cpus=0.5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"memory": "12x"}, "memory: '12x' is not a size like 256m or 1g"),
        ({"memory": 512}, "memory: 512 is not a size like 256m or 1g"),
        ({"memory": "16m"}, "memory: '16m' must be between 32m and 256g"),
        ({"cpus": "lots"}, "cpus: 'lots' is not a number"),
        ({"cpus": 0.01}, "cpus: 0.01 must be between 0.05 and 64"),
        ({"cpus": 65}, "cpus: 65 must be between 0.05 and 64"),
        ({"cpus": True}, "cpus: True is not a number"),
        ({"cpus": float("nan")}, "cpus: nan is not a number"),
        ({"pids": 8}, "pids: 8 must be between 16 and 4096"),
        ({"pids": 5000}, "pids: 5000 must be between 16 and 4096"),
        ({"pids": 100.5}, "pids: 100.5 is not a whole number"),
        ({"run_timeout": "soon"}, "run_timeout: 'soon' is not a duration like 90, 30m or 2h"),
        ({"run_timeout": 0}, "run_timeout: 0 seconds must be between 1 second and 7 days"),
        (
            {"idle_timeout": "8d"},
            "idle_timeout: 691200 seconds must be between 1 second and 7 days",
        ),
        ({"idle_timeout": 1.5}, "idle_timeout: 1.5 is not a duration like 90, 30m or 2h"),
        ({"network": "host"}, "network: 'host' must be one of none, internal, egress"),
        ({"max_sessions_per_user": 0}, "max_sessions_per_user: 0 must be between 1 and 100"),
        ({"tmpfs": "1g"}, "tmpfs: '1g' is larger than the memory limit '512m'"),
        ({"tmpfs": "512k"}, "tmpfs: '512k' must be between 1m and 64g"),
        ({"swap": "1g"}, "swap: unknown limit"),
        ({"a": 1, "b": 2}, "a, b: unknown limits"),
    ],
)
def test_bad_values_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_limits(data)
    assert str(caught.value).startswith(message)


def test_limits_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="^limits: "):
        parse_limits(["memory"])  # type: ignore[arg-type]


def test_fractional_sizes_become_whole_numbers_for_docker() -> None:
    assert parse_limits({"memory": "1.5g"}).memory == "1572864k"
    assert parse_size("1.5g") == parse_size("1536m") == 1536 * 1024 * 1024


def test_admin_overrides_win_field_by_field() -> None:
    group = parse_limits({"memory": "1g", "cpus": 2, "network": "egress"})
    merged = merge(group, {"memory": "2g", "network": "none", "cpus": None})
    assert merged == Limits(memory="2g", cpus=2.0, network="none")
    assert merge(group, None) is group
    assert merge(group, {}) is group


def test_bad_overrides_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^pids: 1 must be between 16 and 4096"):
        merge(Limits(), {"pids": 1})
    with pytest.raises(ValueError, match=r"^tmpfs: '64m' is larger than the memory limit '32m'"):
        merge(Limits(), {"memory": "32m"})
