"""Personal bookmarks and notes on runs: each user's own, invisible to everyone else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from manager.extensions import DbSession
from manager.models import Execution, Script
from manager.models.log_extras import RunBookmark

MAX_NOTE = 4000
MAX_MARKS = 1000


class MarkError(Exception):
    """A bookmark or note that cannot be saved: ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def mark_view(mark: RunBookmark | None, execution_uuid: str) -> dict[str, Any]:
    """A user's mark on a run as the API shows it (empty when there is none)."""
    return {
        "execution_id": execution_uuid,
        "bookmarked": bool(mark and mark.bookmarked),
        "note": mark.note if mark else "",
        "updated_at": mark.updated_at.isoformat() if mark and mark.updated_at else None,
    }


def get_mark(db: DbSession, user_id: int, execution_uuid: str) -> RunBookmark | None:
    return db.execute(
        select(RunBookmark).where(
            RunBookmark.user_id == user_id, RunBookmark.execution_uuid == execution_uuid
        )
    ).scalar()


def parse_mark(data: dict[str, Any]) -> tuple[bool | None, str | None]:
    """``bookmarked`` and ``note`` of a request (either may be left out); MarkError 400."""
    if not {"bookmarked", "note"} & set(data):
        raise MarkError(400, "Send bookmarked (true or false) and/or note (text).")
    unknown = sorted(set(data) - {"bookmarked", "note"})
    if unknown:
        raise MarkError(400, f"Unknown field {unknown[0]!r}: send bookmarked and/or note.")
    bookmarked = data.get("bookmarked")
    if bookmarked is not None and not isinstance(bookmarked, bool):
        raise MarkError(400, "bookmarked must be true or false.")
    note = data.get("note")
    if note is not None:
        if not isinstance(note, str):
            raise MarkError(400, "note must be a text.")
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise MarkError(
                400, f"The note has {len(note)} characters; at most {MAX_NOTE} are kept."
            )
    return bookmarked, note


def set_mark(
    db: DbSession, user_id: int, execution_uuid: str, bookmarked: bool | None, note: str | None
) -> RunBookmark | None:
    """Save the user's bookmark and/or note on the run; None when both end up empty (removed).

    Raises MarkError 409 when the user already marks :data:`MAX_MARKS` runs.
    """
    mark = get_mark(db, user_id, execution_uuid)
    if mark is None:
        count = db.execute(  # marks of deleted runs (left on SQLite) do not count
            select(func.count(RunBookmark.id))
            .join(Execution, Execution.execution_uuid == RunBookmark.execution_uuid)
            .where(RunBookmark.user_id == user_id)
        ).scalar_one()
        if count >= MAX_MARKS:
            raise MarkError(
                409,
                f"You already have bookmarks or notes on {MAX_MARKS} runs, the most allowed: "
                "remove some first.",
            )
        mark = RunBookmark(
            user_id=user_id, execution_uuid=execution_uuid, bookmarked=False, note=""
        )
        db.add(mark)
    if bookmarked is not None:
        mark.bookmarked = bookmarked
    if note is not None:
        mark.note = note
    if not mark.bookmarked and not mark.note:
        if mark.id is not None:
            db.delete(mark)
        else:
            db.expunge(mark)
        return None
    db.flush()
    return mark


def delete_mark(db: DbSession, user_id: int, execution_uuid: str) -> bool:
    """Remove the user's bookmark and note on the run; False when there was none."""
    result = db.execute(
        delete(RunBookmark).where(
            RunBookmark.user_id == user_id, RunBookmark.execution_uuid == execution_uuid
        )
    )
    return bool(getattr(result, "rowcount", 0))


def list_marks(
    db: DbSession, user_id: int, *, bookmarked_only: bool = False
) -> list[dict[str, Any]]:
    """The user's marks, newest first, with the run's script, status and owner.

    Marks on runs the user can no longer see are left out by the caller's visibility rule;
    here the join drops marks whose run was deleted.
    """
    query = (
        select(RunBookmark, Execution, Script.display_name, Script.filename)
        .join(Execution, Execution.execution_uuid == RunBookmark.execution_uuid)
        .outerjoin(Script, Script.id == Execution.script_id)
        .where(RunBookmark.user_id == user_id)
        .order_by(RunBookmark.updated_at.desc(), RunBookmark.id.desc())
    )
    if bookmarked_only:
        query = query.where(RunBookmark.bookmarked.is_(True))
    out = []
    for mark, execution, display_name, filename in db.execute(query).all():
        body = mark_view(mark, execution.execution_uuid)
        body.update(
            {
                "script_name": display_name or filename,
                "status": execution.status,
                "start_time": execution.start_time.isoformat() if execution.start_time else None,
                "owner_id": execution.user_id,
            }
        )
        out.append(body)
    return out
