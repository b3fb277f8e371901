"""Scheduled runs: validate, create, change, pause; when a schedule fires next.

A schedule runs a batch script as its owner, in one of the owner's projects, on a five-field
cron expression read in an IANA time zone (``Europe/Madrid``; daylight saving handled by
croniter on aware times). Times are stored as naive UTC, like every time in the database.
Parameters come from a preset (its values when the schedule fires) or are stored on the
schedule; secret parameters are never stored, so a script that needs one cannot be scheduled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter
from sqlalchemy import func, select

from manager.catalog.schema import validate_parameter_values
from manager.extensions import DbSession
from manager.models import ParameterPreset, Schedule, Script, User, UserProject
from manager.presets import PresetError, clean_values, usable_preset

MAX_NAME = 100
NEXT_SHOWN = 3
FIELDS = ("name", "cron", "timezone", "parameters", "preset_id", "project_id", "enabled")


class ScheduleError(ValueError):
    """A schedule cannot be saved; ``status`` is the HTTP status, the message is for people."""

    def __init__(self, message: str, status: int = 400, **extra: Any):
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


def parse_cron(raw: Any) -> str:
    """A five-field cron expression (minute hour day month weekday), normalised spacing."""
    if not isinstance(raw, str) or not raw.strip():
        raise ScheduleError(
            "Give a cron expression, e.g. '30 6 * * 1-5' (06:30 on weekdays).", field="cron"
        )
    expression = " ".join(raw.split())
    if len(expression.split(" ")) != 5:
        raise ScheduleError(
            f"'{expression}' has {len(expression.split(' '))} fields; a cron expression has "
            "five: minute hour day-of-month month day-of-week (e.g. '0 2 * * *').",
            field="cron",
        )
    try:
        croniter(expression)
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(
            f"'{expression}' is not a valid cron expression: {exc}", field="cron"
        ) from None
    return expression


def parse_timezone(raw: Any) -> str:
    """An IANA time zone name (``UTC``, ``Europe/Madrid``)."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"Unknown time zone {name!r}: use a name such as 'UTC' or 'Europe/Madrid'.",
            field="timezone",
        ) from None
    return name


def next_times(cron: str, timezone: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after`` (naive UTC in, naive UTC out)."""
    zone = ZoneInfo(timezone)
    start = after.replace(tzinfo=UTC).astimezone(zone)
    try:
        iterator = croniter(cron, start)
        moments = [iterator.get_next(datetime) for _ in range(count)]
    except CroniterBadDateError:  # e.g. '0 0 30 2 *': never
        return []
    return [moment.astimezone(UTC).replace(tzinfo=None) for moment in moments]


def next_after(cron: str, timezone: str, after: datetime) -> datetime | None:
    found = next_times(cron, timezone, after, 1)
    return found[0] if found else None


def _name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > MAX_NAME:
        raise ScheduleError(f"A schedule needs a name of 1 to {MAX_NAME} characters.", field="name")
    return raw.strip()


def _project(db: DbSession, user: User, raw: Any) -> UserProject:
    try:
        project = db.get(UserProject, int(raw))
    except (TypeError, ValueError):
        project = None
    if project is None or project.user_id != user.id:
        raise ScheduleError(f"You have no project with id {raw}.", 404, field="project_id")
    return project


def _values(
    db: DbSession, user: User, script: Script, data: dict[str, Any]
) -> tuple[int | None, dict[str, Any]]:
    """The preset id or the stored parameters; a complete, valid set without secrets."""
    definitions = list(script.parameters or [])
    secrets = [d["name"] for d in definitions if d.get("type") == "secret" and d.get("required")]
    if secrets:
        raise ScheduleError(
            f"This script needs the secret parameter {', '.join(secrets)}; secrets are never "
            "stored, so it cannot run on a schedule.",
            field="parameters",
        )
    preset_id = data.get("preset_id")
    try:
        if preset_id not in (None, ""):
            if not str(preset_id).isdigit():
                raise ScheduleError("'preset_id' must be a whole number.", field="preset_id")
            preset: ParameterPreset = usable_preset(db, user, int(preset_id))
            if preset.script_id != script.id:
                raise ScheduleError("That preset belongs to another script.", field="preset_id")
            values, chosen = dict(preset.parameters), preset.id
        else:
            values, chosen = clean_values(definitions, data.get("parameters")).values, None
    except PresetError as exc:
        raise ScheduleError(exc.message, exc.status, **exc.extra) from None
    plain = [d for d in definitions if d.get("type") != "secret"]
    _, errors = validate_parameter_values(plain, values, allow_unknown=True)
    if errors:
        names = ", ".join(sorted(errors))
        raise ScheduleError(f"Some parameters are not valid: {names}.", errors=errors)
    return chosen, ({} if chosen is not None else values)


def create_schedule(
    db: DbSession,
    user: User,
    script: Script,
    data: dict[str, Any],
    *,
    now: datetime,
    interactive: bool,
    max_per_user: int,
) -> Schedule:
    """Check and add a schedule (enabled, next run computed from ``now``); ScheduleError."""
    if not user.reaches("operator"):
        raise ScheduleError("Viewers cannot run scripts, so they cannot schedule them.", 403)
    if not user.reaches(script.required_level):
        raise ScheduleError(f"This script needs the {script.required_level} level.", 403)
    if interactive:
        raise ScheduleError(
            "This script serves a web interface; only batch scripts can run on a schedule."
        )
    cron = parse_cron(data.get("cron"))
    timezone = parse_timezone(data.get("timezone"))
    name = _name(data.get("name") or f"{script.display_name or script.filename} ({cron})")
    project = _project(db, user, data.get("project_id"))
    preset_id, values = _values(db, user, script, data)
    count = db.execute(
        select(func.count(Schedule.id)).where(Schedule.user_id == user.id)
    ).scalar_one()
    if count >= max_per_user:
        raise ScheduleError(
            f"You already have {count} schedules, the most allowed "
            f"(SM_MAX_SCHEDULES_PER_USER={max_per_user}): delete one first.",
            409,
        )
    schedule = Schedule(
        user_id=user.id,
        script_id=script.id,
        project_id=project.id,
        preset_id=preset_id,
        name=name,
        parameters=values,
        cron=cron,
        timezone=timezone,
        enabled=True,
        next_run_at=next_after(cron, timezone, now),
        run_count=0,
    )
    if schedule.next_run_at is None:
        raise ScheduleError(f"'{cron}' never fires (no such date).", field="cron")
    db.add(schedule)
    db.flush()
    return schedule


def update_schedule(
    db: DbSession,
    user: User,
    schedule: Schedule,
    script: Script,
    data: dict[str, Any],
    now: datetime,
) -> list[str]:
    """Apply the fields given (name, cron, timezone, parameters/preset_id, project_id,
    enabled); returns the names changed. Resuming or a new timing recomputes the next run
    from ``now``, so slots missed while paused do not fire."""
    changed = sorted(set(data) & set(FIELDS))
    if not changed:
        raise ScheduleError(f"Send one or more of: {', '.join(FIELDS)}.")
    if "name" in data:
        schedule.name = _name(data["name"])
    if "cron" in data:
        schedule.cron = parse_cron(data["cron"])
    if "timezone" in data:
        schedule.timezone = parse_timezone(data["timezone"])
    if "project_id" in data:
        schedule.project_id = _project(db, user, data["project_id"]).id
    if "parameters" in data or "preset_id" in data:
        schedule.preset_id, schedule.parameters = _values(db, user, script, data)
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise ScheduleError("'enabled' must be true or false.", field="enabled")
        if data["enabled"] and not user.is_active:
            raise ScheduleError("A deactivated user's schedules stay paused.", 409)
        schedule.enabled = data["enabled"]
        schedule.paused_reason = None
    if {"cron", "timezone", "enabled"} & set(data):
        schedule.next_run_at = next_after(schedule.cron, schedule.timezone, now)
        if schedule.next_run_at is None:
            raise ScheduleError(f"'{schedule.cron}' never fires (no such date).", field="cron")
    db.flush()
    return changed


def own_schedule(db: DbSession, user: User, schedule_id: int) -> Schedule:
    """The user's schedule (admins: anyone's); ScheduleError 404 otherwise."""
    schedule = db.get(Schedule, schedule_id)
    if schedule is None or not (schedule.user_id == user.id or user.is_admin):
        raise ScheduleError(f"No schedule with id {schedule_id} is yours.", 404)
    return schedule


def list_schedules(db: DbSession, user: User, everyone: bool = False) -> list[Schedule]:
    query = select(Schedule).order_by(Schedule.id)
    if not everyone:
        query = query.where(Schedule.user_id == user.id)
    return list(db.execute(query).scalars())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


def _local(moment: datetime, timezone: str) -> str:
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def schedule_view(
    schedule: Schedule, now: datetime, script_name: str = "", project_name: str = ""
) -> dict[str, Any]:
    """The schedule as the API and the page show it, with its next fire times."""
    upcoming: list[datetime] = []
    if schedule.enabled and schedule.next_run_at is not None:
        upcoming = [schedule.next_run_at]
        upcoming += next_times(
            schedule.cron, schedule.timezone, schedule.next_run_at, NEXT_SHOWN - 1
        )
    return {
        "id": schedule.id,
        "name": schedule.name,
        "user_id": schedule.user_id,
        "script_id": schedule.script_id,
        "script_name": script_name,
        "project_id": schedule.project_id,
        "project_name": project_name,
        "preset_id": schedule.preset_id,
        "parameters": schedule.parameters,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "paused_reason": schedule.paused_reason,
        "next_runs": [_iso(moment) for moment in upcoming],
        "next_runs_local": [_local(moment, schedule.timezone) for moment in upcoming],
        "last_run_at": _iso(schedule.last_run_at),
        "last_status": schedule.last_status,
        "last_message": schedule.last_message,
        "last_execution_id": schedule.last_execution_uuid,
        "run_count": schedule.run_count,
    }
