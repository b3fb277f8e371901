"""Full-text search: the query language, same results on SQLite and PostgreSQL, safe snippets."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import update

from manager.logs.search import (
    SearchQueryError,
    fts5_query,
    highlight_pattern,
    parse_query,
    snippets,
    ts_query,
)
from manager.models import Execution
from tests.logs.test_api_support import World, build_world


@pytest.fixture
def world(app, make_user) -> World:
    return build_world(app, make_user)


@pytest.mark.parametrize(
    ("text", "fts5", "tsquery"),
    [
        ("Error", '(("error"))', "(('error'))"),
        ("disk full", '(("disk") AND ("full"))', "(('disk')) & (('full'))"),
        ('"out of memory"', '(("out of memory"))', "(('out' <-> 'of' <-> 'memory'))"),
        ("a OR b", '(("a" OR "b"))', "(('a') | ('b'))"),
        ("warn -debug", '(("warn")) NOT ("debug")', "(('warn')) & !(('debug'))"),
        ("proc*", '(("proc" *))', "(('proc':*))"),
        ("raw_data.csv", '(("raw data csv"))', "(('raw' <-> 'data' <-> 'csv'))"),
        ('x" OR 1=1; --', '(("x" OR "1 1"))', "(('x') | ('1' <-> '1'))"),
    ],
)
def test_query_language_is_written_for_both_engines(text, fts5, tsquery):
    query = parse_query(text)
    assert fts5_query(query) == fts5
    assert ts_query(query) == tsquery


@pytest.mark.parametrize("text", ["", "   ", "---", "-only", '""', "OR", "x" * 501])
def test_nothing_searchable_is_refused(text):
    with pytest.raises(SearchQueryError):
        parse_query(text)


def test_snippets_mark_matches_and_escape_everything_else():
    query = parse_query('error "disk full"')
    texts = {
        "output": "start\n<script>alert(1)</script> Error: disk  full & more\n" + "x" * 300,
        "errors": "no match here",
        "debug": "an error_code",
    }
    found = snippets(texts, highlight_pattern(query))
    assert [s["field"] for s in found] == ["output", "debug"]
    first = found[0]
    assert "".join(p["text"] for p in first["parts"]).startswith("start\n<script>")
    assert [p["text"] for p in first["parts"] if p["match"]] == ["Error", "disk  full"]
    assert first["html"] == (
        html.escape("start\n<script>alert(1)</script> ")
        + "<mark>Error</mark>: <mark>disk  full</mark>"
        + html.escape(" & more\n" + "x" * 52)
        + "…"
    )
    assert "<script>" not in first["html"] and first["truncated_after"]
    assert found[1]["parts"][1] == {"text": "error", "match": True}


def test_highlight_respects_word_boundaries_and_prefix():
    pattern = highlight_pattern(parse_query("proc* log"))
    assert [m.group(0) for m in pattern.finditer("processing logs log catalog proc")] == [
        "processing",
        "log",
        "proc",
    ]


def found(client, query: str) -> list[str]:
    response = client.get("/api/logs/search", query_string={"q": query})
    assert response.status_code == 200, response.get_json()
    return sorted(item["execution_id"] for item in response.get_json()["executions"])


def test_search_covers_every_stream_and_the_parameters(world, api):
    out = world.run("olga", output="Processing 1000 records\nAnalysis complete")
    err = world.run("olga", errors="Traceback: ZeroDivisionError in step 3")
    dbg = world.run("olga", debug="peak memory 45MB; image scriptsmanager-env")
    par = world.run("olga", parameters={"input_file": "data/reports/raw_data.csv"})
    world.run("ivan", output="Processing records of ivan")
    olga = api("olga")
    assert found(olga, "records") == [out]
    assert found(olga, "zerodivisionerror") == [err]
    assert found(olga, "45mb") == [dbg]
    assert found(olga, "raw_data.csv") == [par]
    assert found(olga, "reports/raw") == [par]
    assert found(olga, '"analysis complete"') == [out]
    assert found(olga, '"complete analysis"') == []
    assert found(olga, "records OR traceback") == sorted([out, err])
    assert found(olga, "proc*") == [out]
    assert found(olga, "step -zerodivisionerror") == []
    assert found(olga, "ivan") == []


def test_search_results_carry_safe_snippets(world, api):
    world.run("olga", output="<img src=x onerror=alert(1)> token=abc DONE")
    body = api("olga").get("/api/logs/search?q=done").get_json()
    snippet = body["executions"][0]["snippets"][0]
    assert snippet["field"] == "output"
    assert snippet["html"] == "&lt;img src=x onerror=alert(1)&gt; token=abc <mark>DONE</mark>"
    assert body["total"] == 1 and body["filters"]["q"] == "done"


def test_search_combines_with_filters_and_list_q(world, api):
    a = world.run("olga", script="cleanup", output="removed 12 files")
    world.run("olga", script="report", output="removed nothing")
    olga = api("olga")
    response = olga.get(f"/api/logs/search?q=removed&script_id={world.scripts['cleanup']}")
    assert [i["execution_id"] for i in response.get_json()["executions"]] == [a]
    listed = olga.get("/api/logs/execution?q=files").get_json()
    assert [i["execution_id"] for i in listed["executions"]] == [a]
    assert listed["executions"][0]["snippets"][0]["parts"][1]["text"] == "files"
    assert olga.get("/api/logs/search").status_code == 400
    assert olga.get("/api/logs/search?q=%22%22").status_code == 400


def test_index_follows_updates_and_deletes(world, api):
    from manager.extensions import db

    run = world.run("olga", output="first words", with_file=False)
    olga = api("olga")
    assert found(olga, "first") == [run]
    with world.app.app_context():
        db.session.execute(
            update(Execution)
            .where(Execution.execution_uuid == run)
            .values(output="first words\nsecond batch arrived")
        )
        db.session.commit()
    assert found(olga, "batch") == [run]
    assert olga.delete(f"/api/logs/execution/{run}").status_code == 200
    assert found(olga, "first") == []


def test_huge_output_is_indexed_by_head_and_tail(world, api):
    # 200,000 distinct numbered lines: more than PostgreSQL's 1 MB tsvector would take whole.
    lines = [f"line {n} value{n}" for n in range(200_000)]
    lines[5] = "early marker alpha"
    lines[100_000] = "middle marker beta"
    lines[-1] = "final marker omega"
    run = world.run("olga", output="\n".join(lines), with_file=False)
    olga = api("olga")
    assert found(olga, "alpha") == [run]
    assert found(olga, "omega") == [run]
    assert found(olga, "beta") == []  # beyond the indexed head and tail, on both engines


def test_search_explain_uses_the_index_on_postgresql(world):
    from sqlalchemy import select, text

    from manager.extensions import db
    from manager.logs.search import match_clause

    with world.app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL only: the GIN expression index")
        # Without sequential and plain index scans, only a matching expression index is left.
        db.session.execute(text("SET enable_seqscan = off"))
        db.session.execute(text("SET enable_indexscan = off"))
        query = select(Execution.id).where(match_clause("postgresql", parse_query("needle")))
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(text(f"EXPLAIN {compiled}")).scalars().all()
        db.session.rollback()
    assert any("ix_execution_logs_search" in line for line in plan), "\n".join(plan)


@pytest.mark.parametrize("text_", ["needle", '"setpoint reached"', "calib*", "alarm -cleared"])
def test_search_never_builds_a_document_per_run_on_postgresql(world, text_):
    """Whatever plan PostgreSQL picks (a scan for a common word, a recheck for a phrase), it
    reads the stored document: building it again from the output cost ~0.5 ms a run (1.8 s
    over 3,000 runs in bench/scale before the stored column)."""
    from sqlalchemy import select, text

    from manager.extensions import db
    from manager.logs.search import match_clause

    with world.app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL only: the stored search document")
        for planner in ("enable_indexscan", "enable_bitmapscan"):  # both plans the planner has
            db.session.execute(text(f"SET LOCAL {planner} = off"))
            query = select(Execution.id).where(match_clause("postgresql", parse_query(text_)))
            compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
            plan = db.session.execute(text(f"EXPLAIN VERBOSE {compiled}")).scalars().all()
            db.session.rollback()
            assert not any("to_tsvector" in line for line in plan), "\n".join(plan)
            assert any("search_document" in line for line in plan), "\n".join(plan)


STATS_100K = {
    "ix_execution_logs_user_start": "100000 100000 2 1",
    "ix_execution_logs_user_script": "100000 100000 100000 1",
    "ix_execution_logs_user_project_script": "100000 100000 100000 100000 1",
    "ix_execution_logs_user_id": "100000 100000",
    "ix_execution_logs_start_time": "100000 2",
    "ix_execution_logs_script_id": "100000 100000",
    "ix_execution_logs_project_id": "100000 100000",
}


@pytest.mark.parametrize("text_", [None, "pressure", '"setpoint reached"'])
def test_a_page_of_my_runs_is_read_in_order_from_an_index_on_sqlite(world, text_):
    """The page's ids come from ix_execution_logs_user_start in the list's order, never from
    sorting every matching run (0.7 s for a common word over 100,000 runs: bench/scale)."""
    from sqlalchemy import text

    from manager.extensions import db
    from manager.logs.queries import LogFilters, _page_ids

    with world.app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's planner; PostgreSQL has its own test above")
        # The planner as it is with 100,000 runs of one user (the statistics ANALYZE would
        # write), where driving the query from the matches looks cheap to it.
        db.session.execute(text("ANALYZE"))
        db.session.execute(text("DELETE FROM sqlite_stat1 WHERE tbl = 'execution_logs'"))
        for index, stat in STATS_100K.items():
            db.session.execute(
                text("INSERT INTO sqlite_stat1 VALUES ('execution_logs', :index, :stat)"),
                {"index": index, "stat": stat},
            )
        db.session.commit()
        db.session.execute(text("ANALYZE sqlite_schema"))  # reload the statistics
        filters = LogFilters(user_id=1, q=text_, query=parse_query(text_) if text_ else None)
        compiled = _page_ids(filters, "sqlite").compile(
            db.engine, compile_kwargs={"literal_binds": True}
        )
        plan = [row[3] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    assert any("ix_execution_logs_user_start" in line for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


def test_a_search_counts_its_matches_up_to_a_limit(world, api, monkeypatch):
    """Past SEARCH_COUNT_LIMIT a search says "more than" instead of counting every match."""
    from manager.logs import queries

    monkeypatch.setattr(queries, "SEARCH_COUNT_LIMIT", 3)
    runs = [world.run("olga", output=f"valve check {n}") for n in range(5)]
    world.run("olga", output="pump check")
    olga = api("olga")
    many = olga.get("/api/logs/search?q=valve&per_page=2").get_json()
    assert many["total"] == 3 and many["total_exact"] is False
    assert [i["execution_id"] for i in many["executions"]] == runs[::-1][:2]  # newest first
    few = olga.get("/api/logs/search?q=pump").get_json()
    assert few["total"] == 1 and few["total_exact"] is True
    listed = olga.get("/api/logs/execution").get_json()  # a plain list counts everything
    assert listed["total"] == 6 and listed["total_exact"] is True
