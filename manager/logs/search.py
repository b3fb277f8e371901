"""Full-text search over run output and parameters: SQLite FTS5 or PostgreSQL tsvector.

Both engines index the same text the same way, so a query finds the same runs on either:

* what is indexed: per field (stdout, stderr, debug, parameters as JSON text) its first
  ``head`` and last ``tail`` characters (:data:`FIELDS`); a bounded document keeps PostgreSQL
  under its 1 MB tsvector limit and keeps re-indexing cheap while a run prints;
* tokens: runs of letters and digits, lower-cased, accents kept (FTS5 ``unicode61
  remove_diacritics 0``; PostgreSQL ``simple`` after punctuation is turned into spaces);
* query language (:func:`parse_query`): words are ANDed, ``"a phrase"``, ``-word`` excludes,
  ``OR`` between two terms, ``word*`` matches a prefix. The same tree is written as an FTS5
  query and as a tsquery, so no user text is ever parsed by the database's own query syntax.

Snippets are cut in Python from the indexed text and returned as parts (``{"text", "match"}``)
plus an HTML string where everything is escaped and only ``<mark>`` is added.

Migration 0002 builds the FTS5 table / GIN index from these functions: changing :data:`FIELDS`
or the expressions needs a new migration that rebuilds them. On PostgreSQL, migration 0009
keeps the document in a stored generated column (:data:`SEARCH_COLUMN`) with the GIN index on
it: a query then reads each candidate's stored tsvector instead of computing it again from up to
260,000 characters per run (a common word or a phrase made the planner do that for every run:
1.8 s over 3,000 runs before, see ``bench/scale``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Integer, bindparam, func, literal_column, text

from manager.extensions import DbSession
from manager.models import Execution
from manager.models.logs import SEARCH_COLUMN, SEARCH_COLUMN_INDEX, SEARCH_INDEX, SEARCH_TABLE

# (name in results, column, head chars, tail chars)
FIELDS: tuple[tuple[str, str, int, int], ...] = (
    ("output", "output", 100_000, 50_000),
    ("errors", "error_output", 40_000, 20_000),
    ("debug", "debug_output", 20_000, 10_000),
    ("parameters", "parameters", 20_000, 0),
)
MAX_QUERY_LENGTH = 500
MAX_TERMS = 32
SNIPPET_CONTEXT = 60
MAX_SNIPPETS = 3
MAX_SNIPPET = 400

_TOKEN = re.compile(r"[^\W_]+")
_LEXEME = re.compile(r'(-?)"([^"]*)"?|(\S+)')


class SearchQueryError(ValueError):
    """A search text that cannot be used; the message says why, for the user."""


@dataclass(frozen=True)
class Term:
    """A word or phrase: tokens that must follow each other; ``prefix`` on the last one."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """All ``groups`` must match (each group: any of its terms), none of ``excluded``."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]

    @property
    def positive_terms(self) -> list[Term]:
        return [term for group in self.groups for term in group]


def parse_query(raw: str) -> SearchQuery:
    """Parse what a user typed; raise SearchQueryError when nothing searchable is left."""
    if len(raw) > MAX_QUERY_LENGTH:
        raise SearchQueryError(f"The search text is longer than {MAX_QUERY_LENGTH} characters.")
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    pending_or = False
    for match in _LEXEME.finditer(raw):
        negated, phrase, word = match.group(1) == "-", match.group(2), match.group(3)
        prefix = False
        if word is not None:
            if word.upper() == "OR":
                pending_or = bool(groups)
                continue
            negated = word.startswith("-") and len(word) > 1
            word = word[1:] if negated else word
            prefix = word.endswith("*")
            phrase = word
        tokens = tuple(token.lower() for token in _TOKEN.findall(phrase or ""))
        if not tokens:
            continue
        term = Term(tokens, prefix)
        if negated:
            excluded.append(term)
        elif pending_or:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    if len(excluded) + sum(len(g) for g in groups) > MAX_TERMS:
        raise SearchQueryError(f"Use at most {MAX_TERMS} words or phrases in a search.")
    if not groups:
        raise SearchQueryError(
            "Type at least one word to search for (letters or digits; -word only excludes)."
        )
    return SearchQuery(tuple(tuple(g) for g in groups), tuple(excluded))


def fts5_query(query: SearchQuery) -> str:
    """The query in FTS5 syntax: every token quoted, so no user text is an operator."""

    def term(t: Term) -> str:
        return '"' + " ".join(t.tokens) + '"' + (" *" if t.prefix else "")

    def any_of(terms: Sequence[Term]) -> str:
        return "(" + " OR ".join(term(t) for t in terms) + ")"

    positive = "(" + " AND ".join(any_of(g) for g in query.groups) + ")"
    return positive + (f" NOT {any_of(query.excluded)}" if query.excluded else "")


def ts_query(query: SearchQuery) -> str:
    """The query as PostgreSQL tsquery text (tokens are letters and digits only)."""

    def term(t: Term) -> str:
        lexemes = [f"'{token}'" for token in t.tokens]
        if t.prefix:
            lexemes[-1] += ":*"
        return "(" + " <-> ".join(lexemes) + ")"

    def any_of(terms: Sequence[Term]) -> str:
        return "(" + " | ".join(term(t) for t in terms) + ")"

    positive = " & ".join(any_of(g) for g in query.groups)
    return positive + (f" & !{any_of(query.excluded)}" if query.excluded else "")


def field_sql(dialect: str, column: str, head: int, tail: int) -> str:
    """SQL for the indexed part of one column: all of it, or its head and tail."""
    if dialect == "postgresql":
        value = f"coalesce({column}::text, '')" if column.endswith("parameters") else None
        value = value or f"coalesce({column}, '')"
        start, end = f"left({value}, {head})", f"right({value}, {tail})"
    else:
        value = f"coalesce({column}, '')"
        start, end = f"substr({value}, 1, {head})", f"substr({value}, -{tail})"
    if not tail:
        return start
    both = f"{start} || ' ' || {end}"
    return f"(CASE WHEN length({value}) <= {head + tail} THEN {value} ELSE {both} END)"


def postgres_document_sql() -> str:
    """The tsvector expression of the GIN index (and of every query that must use it)."""
    parts = " || ' ' || ".join(
        field_sql("postgresql", column, head, tail) for _, column, head, tail in FIELDS
    )
    return f"to_tsvector('simple'::regconfig, regexp_replace({parts}, '[[:punct:]]+', ' ', 'g'))"


def sqlite_schema_sql() -> list[str]:
    """Statements creating the FTS5 table, filling it, and the triggers keeping it in sync."""
    names = ", ".join(name for name, _, _, _ in FIELDS)

    def values(row: str) -> str:
        return ", ".join(field_sql("sqlite", f"{row}.{col}", h, t) for _, col, h, t in FIELDS)

    table, columns = SEARCH_TABLE, ", ".join(column for _, column, _, _ in FIELDS)
    delete = (
        f"INSERT INTO {table}({table}, rowid, {names}) VALUES ('delete', old.id, {values('old')});"
    )
    insert = f"INSERT INTO {table}(rowid, {names}) VALUES (new.id, {values('new')});"
    return [
        f"CREATE VIRTUAL TABLE {table} USING fts5({names}, content='', "
        "tokenize='unicode61 remove_diacritics 0')",
        f"INSERT INTO {table}(rowid, {names}) SELECT id, {values('execution_logs')} "
        "FROM execution_logs",
        f"CREATE TRIGGER {table}_ai AFTER INSERT ON execution_logs BEGIN {insert} END",
        f"CREATE TRIGGER {table}_ad AFTER DELETE ON execution_logs BEGIN {delete} END",
        f"CREATE TRIGGER {table}_au AFTER UPDATE OF {columns} ON execution_logs "
        f"BEGIN {delete} {insert} END",
    ]


def sqlite_drop_sql() -> list[str]:
    """Statements removing the FTS5 table and its triggers."""
    return [f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_{suffix}" for suffix in ("ai", "ad", "au")] + [
        f"DROP TABLE IF EXISTS {SEARCH_TABLE}"
    ]


def postgres_schema_sql() -> list[str]:
    """The statement creating the GIN expression index."""
    return [f"CREATE INDEX {SEARCH_INDEX} ON execution_logs USING gin ({postgres_document_sql()})"]


def postgres_drop_sql() -> list[str]:
    """The statement removing the GIN expression index."""
    return [f"DROP INDEX IF EXISTS {SEARCH_INDEX}"]


def postgres_column_sql() -> list[str]:
    """Statements replacing the expression index by a stored document column and its index."""
    return [
        *postgres_drop_sql(),
        f"ALTER TABLE execution_logs ADD COLUMN {SEARCH_COLUMN} tsvector "
        f"GENERATED ALWAYS AS ({postgres_document_sql()}) STORED",
        f"CREATE INDEX {SEARCH_COLUMN_INDEX} ON execution_logs USING gin ({SEARCH_COLUMN})",
    ]


def postgres_column_drop_sql() -> list[str]:
    """Statements going back to the expression index of migration 0002."""
    return [
        f"DROP INDEX IF EXISTS {SEARCH_COLUMN_INDEX}",
        f"ALTER TABLE execution_logs DROP COLUMN IF EXISTS {SEARCH_COLUMN}",
        *postgres_schema_sql(),
    ]


def match_clause(dialect: str, query: SearchQuery) -> ColumnElement[bool]:
    """A WHERE clause on Execution keeping the runs that match ``query``."""
    if dialect == "postgresql":
        # On the run's own row (no subquery on the table): the GIN index on the stored column.
        document: ColumnElement[Any] = literal_column(f"{Execution.__tablename__}.{SEARCH_COLUMN}")
        wanted = func.to_tsquery(
            literal_column("'simple'::regconfig"),
            bindparam("search_tsquery", ts_query(query), unique=True),
        )
        return document.op("@@", return_type=Boolean)(wanted)
    if dialect == "sqlite":
        ids = text(
            f"SELECT rowid AS id FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :search_fts"
        ).bindparams(search_fts=fts5_query(query))
        # ``+id``: SQLite must not drive the query from the matches (fetching and sorting every
        # matching run, 0.7 s for a common word over 100,000 runs) but walk the user's runs in
        # the list's order from an index, checking each against the matches, and stop at a page.
        unindexed = literal_column(f"+{Execution.__tablename__}.id", Integer())
        return unindexed.in_(ids.columns(id=Integer()))
    raise SearchQueryError(f"Full-text search is not available on {dialect}.")


def indexed_texts(db: DbSession, execution_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """The indexed text of each field of these runs, to cut snippets from."""
    if not execution_ids:
        return {}
    dialect = db.get_bind().dialect.name
    columns = ", ".join(f"{field_sql(dialect, c, h, t)} AS {n}" for n, c, h, t in FIELDS)
    statement = text(f"SELECT id, {columns} FROM execution_logs WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    rows = db.execute(statement, {"ids": list(execution_ids)}).mappings()
    return {row["id"]: {name: row[name] or "" for name, _, _, _ in FIELDS} for row in rows}


def highlight_pattern(query: SearchQuery) -> re.Pattern[str]:
    """A regex finding the query's positive terms the way the index tokenizes text."""
    alternatives = []
    for term in sorted(query.positive_terms, key=lambda t: -sum(map(len, t.tokens))):
        body = r"[\W_]+".join(re.escape(token) for token in term.tokens)
        alternatives.append(r"(?<![^\W_])" + body + (r"[^\W_]*" if term.prefix else r"(?![^\W_])"))
    return re.compile("|".join(alternatives), re.IGNORECASE)


def snippets(
    texts: dict[str, str], pattern: re.Pattern[str], limit: int = MAX_SNIPPETS
) -> list[dict[str, Any]]:
    """Up to ``limit`` snippets around matches, field by field, matches marked."""
    found: list[dict[str, Any]] = []
    for field, value in texts.items():
        spans = [m.span() for m in pattern.finditer(value)]
        spans.reverse()  # pop() takes the first
        while spans and len(found) < limit:
            start = max(0, spans[-1][0] - SNIPPET_CONTEXT)
            end, inside = start, list[tuple[int, int]]()
            # Matches close together share a snippet, up to MAX_SNIPPET characters.
            while spans and spans[-1][0] < end or not inside:
                begin, finish = spans.pop()
                inside.append((begin, finish))
                end = min(len(value), max(end, finish + SNIPPET_CONTEXT))
                if not spans or end - start > MAX_SNIPPET:
                    break
            found.append(_snippet(field, value, start, end, inside))
        if len(found) >= limit:
            break
    return found


def _snippet(
    field: str, value: str, start: int, end: int, spans: list[tuple[int, int]]
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    cursor = start
    for begin, finish in spans:
        if begin > cursor:
            parts.append({"text": value[cursor:begin], "match": False})
        parts.append({"text": value[begin:finish], "match": True})
        cursor = finish
    if cursor < end:
        parts.append({"text": value[cursor:end], "match": False})
    marked = "".join(
        f"<mark>{html.escape(p['text'])}</mark>" if p["match"] else html.escape(p["text"])
        for p in parts
    )
    return {
        "field": field,
        "parts": parts,
        "html": ("…" if start > 0 else "") + marked + ("…" if end < len(value) else ""),
        "truncated_before": start > 0,
        "truncated_after": end < len(value),
    }
