"""The execution log list: filters, sorting, pagination and the row summary.

:func:`parse_filters` turns query-string (or preset) values into :class:`LogFilters` and raises
:class:`FilterError` with a message for the user; :func:`list_executions` runs the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import defer
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Text

from manager.extensions import DbSession
from manager.logs.search import (
    SearchQuery,
    SearchQueryError,
    highlight_pattern,
    indexed_texts,
    match_clause,
    parse_query,
    snippets,
)
from manager.models import Execution, Script, User, UserProject

STATUSES = (
    "starting",
    "running",
    "stopping",
    "completed",
    "failed",
    "terminated",
    "timed_out",
    "killed",
    "lost",
)
LIVE_STATUSES = ("starting", "running", "stopping")
SORTS = ("script", "project", "start", "duration", "status", "user")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
SEARCH_COUNT_LIMIT = 1000  # a search's matches are counted up to this many
PREVIEW_CHARS = 240
# Keys a filter preset may hold: the list's query parameters.
FILTER_KEYS = (
    "script_id",
    "project_id",
    "user_id",
    "date_from",
    "date_to",
    "status",
    "min_duration",
    "max_duration",
    "q",
    "sort",
    "order",
    "per_page",
)


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the parameter."""


@dataclass
class LogFilters:
    """What the log list is narrowed to and ordered by."""

    script_id: int | None = None
    project_id: int | None = None
    user_id: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    statuses: list[str] = field(default_factory=list)
    min_duration: int | None = None
    max_duration: int | None = None
    q: str | None = None
    query: SearchQuery | None = None
    sort: str = "start"
    descending: bool = True
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def echo(self) -> dict[str, Any]:
        """The filters as JSON, to show back to the client."""
        shown = asdict(self)
        shown.pop("query")
        shown["order"] = "desc" if shown.pop("descending") else "asc"
        for key in ("date_from", "date_to"):
            shown[key] = shown[key].isoformat() if shown[key] else None
        return shown


def int_param(args: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    """An optional whole number within ``[low, high]``; FilterError names the parameter."""
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise FilterError(f"{name} must be a whole number, not {str(raw)[:40]!r}.") from None
    if not low <= value <= high:
        raise FilterError(f"{name} must be between {low} and {high}.")
    return value


def moment_param(args: Mapping[str, Any], name: str, end_of_day: bool) -> datetime | None:
    """An optional date or ISO date-time, as naive UTC.

    A bare date with ``end_of_day`` gives the next midnight: an exclusive bound covering the day.
    """
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    text = str(raw).strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=int(end_of_day)), time())
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is not None:  # stored as naive UTC
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise FilterError(
            f"{name} must be a date (YYYY-MM-DD) or an ISO date-time, not {text[:40]!r}."
        ) from None
    return moment


def parse_filters(args: Mapping[str, Any], *, allow_user: bool = False) -> LogFilters:
    """Read the list's query parameters; raise FilterError naming a bad one."""
    filters = LogFilters(
        script_id=int_param(args, "script_id", 1, 2**31 - 1),
        project_id=int_param(args, "project_id", 1, 2**31 - 1),
        user_id=int_param(args, "user_id", 1, 2**31 - 1) if allow_user else None,
        date_from=moment_param(args, "date_from", end_of_day=False),
        date_to=moment_param(args, "date_to", end_of_day=True),
        min_duration=int_param(args, "min_duration", 0, 10**9),
        max_duration=int_param(args, "max_duration", 0, 10**9),
        page=int_param(args, "page", 1, 10**6) or 1,
        per_page=int_param(args, "per_page", 1, MAX_PER_PAGE) or DEFAULT_PER_PAGE,
    )
    if filters.date_from and filters.date_to and filters.date_from >= filters.date_to:
        raise FilterError("date_from must be before date_to.")
    if (
        filters.min_duration is not None
        and filters.max_duration is not None
        and filters.min_duration > filters.max_duration
    ):
        raise FilterError("min_duration must not be more than max_duration.")
    raw_status = args.get("status") or ""
    wanted = raw_status if isinstance(raw_status, list) else str(raw_status).split(",")
    filters.statuses = [s.strip() for s in wanted if s and s.strip()]
    unknown = [s for s in filters.statuses if s not in STATUSES]
    if unknown:
        raise FilterError(f"Unknown status {unknown[0]!r}; use one of: {', '.join(STATUSES)}.")
    sort = str(args.get("sort") or "start")
    order = str(args.get("order") or "")
    if sort.startswith("-"):
        sort, order = sort[1:], order or "desc"
    if sort not in SORTS or (sort == "user" and not allow_user):
        allowed = [s for s in SORTS if allow_user or s != "user"]
        raise FilterError(f"sort must be one of: {', '.join(allowed)}.")
    if order not in ("", "asc", "desc"):
        raise FilterError("order must be asc or desc.")
    filters.sort = sort
    filters.descending = order != "asc" if order else sort in ("start", "duration")
    q = str(args.get("q") or "").strip()
    if q:
        try:
            filters.query = parse_query(q)
        except SearchQueryError as exc:
            raise FilterError(str(exc)) from None
        filters.q = q
    return filters


class tail_text(FunctionElement[str]):
    """The last ``n`` characters of a text column, on SQLite and PostgreSQL."""

    type = Text()
    inherit_cache = True


@compiles(tail_text, "postgresql")
def _tail_pg(element: tail_text, compiler: Any, **kw: Any) -> str:
    column, n = list(element.clauses)
    return f"right({compiler.process(column, **kw)}, {compiler.process(n, **kw)})"


@compiles(tail_text)
def _tail_default(element: tail_text, compiler: Any, **kw: Any) -> str:
    column, n = list(element.clauses)
    return f"substr({compiler.process(column, **kw)}, -{compiler.process(n, **kw)})"


def _base(filters: LogFilters, dialect: str) -> Select[Any]:
    query = select(Execution.id)
    if filters.user_id is not None:
        query = query.where(Execution.user_id == filters.user_id)
    if filters.script_id is not None:
        query = query.where(Execution.script_id == filters.script_id)
    if filters.project_id is not None:
        query = query.where(Execution.project_id == filters.project_id)
    if filters.date_from is not None:
        query = query.where(Execution.start_time >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(Execution.start_time < filters.date_to)
    if filters.statuses:
        query = query.where(Execution.status.in_(filters.statuses))
    if filters.min_duration is not None:
        query = query.where(Execution.duration_seconds >= filters.min_duration)
    if filters.max_duration is not None:
        query = query.where(Execution.duration_seconds <= filters.max_duration)
    if filters.query is not None:
        query = query.where(match_clause(dialect, filters.query))
    return query


def _order(filters: LogFilters) -> list[Any]:
    column: Any = {
        "script": func.coalesce(Script.display_name, Script.filename),
        "project": UserProject.project_name,
        "start": Execution.start_time,
        "duration": Execution.duration_seconds,
        "status": Execution.status,
        "user": User.username,
    }[filters.sort]
    ordered = column.desc() if filters.descending else column.asc()
    tiebreak = Execution.id.desc() if filters.descending else Execution.id.asc()
    if filters.sort == "start":  # never NULL: as plain as the (user, start) index's order
        return [ordered, tiebreak]
    return [ordered.nulls_last(), tiebreak]


@dataclass
class Page:
    """One page of the list: summaries and the totals to page through."""

    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    total_exact: bool = True  # False: a search found more than ``total`` (SEARCH_COUNT_LIMIT)

    def to_dict(self, filters: LogFilters) -> dict[str, Any]:
        """The page as JSON, with the filters it was made with."""
        return {
            "executions": self.items,
            "total": self.total,
            "total_exact": self.total_exact,
            "page": self.page,
            "per_page": self.per_page,
            "pages": max(1, -(-self.total // self.per_page)),
            "filters": filters.echo(),
        }


def _page_ids(filters: LogFilters, dialect: str) -> Select[Any]:
    """The ids of the page's runs, in order: only the joins the sort needs, so the database
    can walk an index in the list's order and stop at the page (ix_execution_logs_user_start)
    instead of loading and sorting every matching run."""
    query = _base(filters, dialect)
    if filters.sort == "script":
        query = query.outerjoin(Script, Script.id == Execution.script_id)
    elif filters.sort == "project":
        query = query.outerjoin(UserProject, UserProject.id == Execution.project_id)
    elif filters.sort == "user":
        query = query.join(User, User.id == Execution.user_id)
    return (
        query.order_by(*_order(filters))
        .offset((filters.page - 1) * filters.per_page)
        .limit(filters.per_page)
    )


def list_executions(db: DbSession, filters: LogFilters) -> Page:
    """The page of runs matching ``filters`` (ownership is a filter: set ``user_id``)."""
    dialect = db.get_bind().dialect.name
    matching = _base(filters, dialect)
    exact = True
    if filters.query is not None:
        # A search counts up to a limit: counting every match of a common word reads every
        # run (0.35 s over 100,000 runs on PostgreSQL); past the limit the list says "more".
        matching = matching.limit(SEARCH_COUNT_LIMIT + 1)
    total = db.execute(select(func.count()).select_from(matching.subquery())).scalar_one()
    if total > SEARCH_COUNT_LIMIT and filters.query is not None:
        total, exact = SEARCH_COUNT_LIMIT, False
    page_ids = list(db.execute(_page_ids(filters, dialect)).scalars())
    query = (
        select(
            Execution,
            func.coalesce(Script.display_name, Script.filename).label("script_name"),
            UserProject.project_name,
            User.username,
            tail_text(Execution.output, PREVIEW_CHARS).label("output_tail"),
            tail_text(Execution.error_output, PREVIEW_CHARS).label("errors_tail"),
        )
        .where(Execution.id.in_(page_ids))
        .outerjoin(Script, Script.id == Execution.script_id)
        .outerjoin(UserProject, UserProject.id == Execution.project_id)
        .join(User, User.id == Execution.user_id)
        .order_by(*_order(filters))
        # A page must not load megabytes of output: the previews are cut in SQL.
        .options(
            defer(Execution.output), defer(Execution.error_output), defer(Execution.debug_output)
        )
    )
    items = [
        summary(row.Execution, row.script_name, row.project_name, row.username)
        | {"preview": {"output": row.output_tail or "", "errors": row.errors_tail or ""}}
        for row in db.execute(query)
    ]
    return Page(items, total, filters.page, filters.per_page, total_exact=exact)


def search_executions(db: DbSession, filters: LogFilters) -> Page:
    """Like :func:`list_executions` (``filters.query`` set), each run with its snippets."""
    if filters.query is None:
        raise FilterError("Type something to search for (q).")
    page = list_executions(db, filters)
    texts = indexed_texts(db, [item["id"] for item in page.items])
    pattern = highlight_pattern(filters.query)
    for item in page.items:
        item["snippets"] = snippets(texts.get(item["id"], {}), pattern)
    return page


def summary(
    execution: Execution, script_name: str | None, project_name: str | None, username: str | None
) -> dict[str, Any]:
    """What the list shows of one run."""
    return {
        "id": execution.id,
        "execution_id": execution.execution_uuid,
        "script_id": execution.script_id,
        "script_name": script_name,
        "project_id": execution.project_id,
        "project_name": project_name,
        "user_id": execution.user_id,
        "username": username,
        "status": execution.status,
        "live": execution.status in LIVE_STATUSES,
        "interactive": execution.interactive,
        "scheduled": "scheduled" in (execution.tags or "").split(","),
        "start_time": _iso(execution.start_time),
        "end_time": _iso(execution.end_time),
        "duration_seconds": execution.duration_seconds,
        "exit_code": execution.exit_code,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def preset_filters(raw: Any, *, allow_user: bool = False) -> dict[str, Any]:
    """Check the filters of a preset; return them cleaned (known keys, valid values)."""
    if not isinstance(raw, dict):
        raise FilterError("filters must be an object of list parameters.")
    unknown = sorted(set(raw) - set(FILTER_KEYS))
    if unknown:
        raise FilterError(f"Unknown filter {unknown[0]!r}; use: {', '.join(FILTER_KEYS)}.")
    clean = {key: value for key, value in raw.items() if value not in (None, "", [])}
    if "user_id" in clean and not allow_user:
        raise FilterError("user_id is a filter of the admin log list only.")
    for key, value in clean.items():
        if not isinstance(value, str | int | float | bool | list):
            raise FilterError(f"filter {key!r} must be text or a number.")
        if isinstance(value, str) and len(value) > 500:
            raise FilterError(f"filter {key!r} is too long.")
    parse_filters(clean, allow_user=allow_user)
    return clean
