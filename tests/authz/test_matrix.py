"""The authorization matrix: every route × every kind of caller, against ``table.ROWS``."""

from __future__ import annotations

import pytest

from tests.authz.conftest import World
from tests.authz.matrix import BASE_COLUMNS, OTHER_COLUMNS, ask, cells, routes
from tests.authz.table import BODIES, KNOWN_BUGS, ROWS


def expected(key: str) -> dict[str, str]:
    """The row's statuses by column ("-": no such cell)."""
    base, _, other = ROWS[key].partition("|")
    values = dict(zip(BASE_COLUMNS, base.split(), strict=True))
    if other:
        values.update(zip(OTHER_COLUMNS, other.split(), strict=True))
    return values


def test_every_route_has_a_row(world: World) -> None:
    answered = set(routes(world.app))
    missing = sorted(answered - set(ROWS))
    stale = sorted(set(ROWS) - answered)
    assert not missing, "routes without a row in tests/authz/table.py:\n" + "\n".join(missing)
    assert not stale, "rows for routes the app no longer has:\n" + "\n".join(stale)


@pytest.mark.parametrize("key", sorted(ROWS))
def test_row(world: World, key: str) -> None:
    if key not in routes(world.app):
        pytest.skip("no such route (test_every_route_has_a_row says so)")
    want = expected(key)
    got: dict[str, str] = {}
    for cell in cells(world, key):
        got[cell.column] = str(ask(world, key, cell, BODIES.get(key)))
    shown = {column: value for column, value in want.items() if value != "-"}
    known = KNOWN_BUGS.get(key, {})
    wrong = {c: (shown.get(c), got.get(c)) for c in shown.keys() | got.keys()
             if shown.get(c) != got.get(c) and c not in known}  # fmt: skip
    assert not wrong, f"{key}: column: (expected, got) {wrong}"
    assert not any(value.startswith("5") for value in got.values()), got
    if known:
        still = {c: got.get(c) for c in known if got.get(c) != shown.get(c)}
        if still:
            pytest.xfail("; ".join(known[c] for c in still))


def test_no_route_is_answered_by_two_views(world: World) -> None:
    """Two views on one (method, rule): the second one is dead code, its checks untested."""
    seen: dict[str, str] = {}
    twice = []
    for rule in world.app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            key = f"{method} {rule.rule}"
            if key in seen:
                twice.append(f"{key}: {seen[key]} and {rule.endpoint}")
            seen[key] = rule.endpoint
    assert not twice, "\n".join(twice)
