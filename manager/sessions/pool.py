"""The warm pool: standby containers started ahead for a (group, user, project), handed to a run.

A container's bind mounts are fixed at creation and the workspace is per user × project ×
group, so a standby is made for exactly one (group, user, project), with the cold path's image,
mounts, limits and network (``spec.build_pool_spec``), except the context file: the runner waits
for it in the slot's own folder. At hand-over the manager renames the capture folder to the
run's and writes the context (temporary name + rename); the script starts within ~10 ms.

State is in the database: one ``PoolSlot`` row per standby. A standby is handed to one run only:
the update that hands it over matches ``state = 'standby'``, so of two executes (in any manager
process) exactly one gets it and the other goes cold. Filling and trimming run in the background
(the session monitor's thread, in the process that leads it), never on the request path; a
request only records intent (``PoolDemand``) and wakes the filler. The replacement of a standby
just handed over starts ``REFILL_DELAY`` seconds later, not at once: a container start (the
engine's work, then the new runner importing Flask) would take the CPU that the handed runner
needs to start its script and answer the first page.

A standby's runner says when it is ready (Flask imported, waiting for its context): it creates
``standby-ready`` in its capture folder. A hand-over takes a ready standby before one that is
still importing.

Off by default: a group's ``pool_size`` is 0 until an admin sets it (0..10).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from manager.extensions import DbSession
from manager.models import (
    Execution,
    PoolDemand,
    PoolSlot,
    ScriptGroup,
    ScriptProcess,
    User,
    UserProject,
    utcnow,
)
from manager.sessions.backend import BackendError, Handle
from manager.sessions.limits import Limits, parse_size
from manager.sessions.spec import (
    build_pool_spec,
    pool_execution_id,
    session_network,
)
from manager.sessions.workspace import prepare_workspace, workspace_dir, write_context_file

log = logging.getLogger("scriptsmanager")

POOL_SIZE_MAX = 10
DEFAULT_IDLE_SECONDS = 300
STANDING = ("creating", "standby")  # count against the caps; "removing" is on its way out
MEMORY_RESERVE = 256 * 1024 * 1024  # host memory left free when filling
COUNTED = ("starting", "running")
REFILL_DELAY = 1.0  # seconds between a hand-over and the start of its replacement
READY_FILE = "standby-ready"  # in a standby's capture folder (runner-image/smrunner/capture.py)


class PoolSizeError(ValueError):
    """A pool size outside 0..10."""


def parse_pool_size(value: Any) -> int:
    """The pool size an admin sent: an integer 0..10; raise PoolSizeError with a clear message."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise PoolSizeError(f"pool_size: must be a whole number from 0 to {POOL_SIZE_MAX}")
    try:
        size = int(str(value).strip())
    except ValueError:
        raise PoolSizeError(
            f"pool_size: must be a whole number from 0 to {POOL_SIZE_MAX}, not {value!r}"
        ) from None
    if not 0 <= size <= POOL_SIZE_MAX:
        raise PoolSizeError(f"pool_size: must be from 0 to {POOL_SIZE_MAX}, not {size}")
    return size


def pool_key(image: str, limits: Limits, network: str) -> str:
    """What a standby and a run must share: the image tag, every limit and the network."""
    document = json.dumps(
        {"image": image, "limits": limits.to_dict(), "network": network}, sort_keys=True
    )
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def available_memory() -> int | None:
    """The host's MemAvailable in bytes (None when unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_pool() -> WarmPool | None:
    """The app's warm pool (None without a session runtime)."""
    from flask import current_app

    found = current_app.extensions.get("sm_sessions")
    pool = getattr(getattr(found, "service", None), "pool", None)
    return pool if isinstance(pool, WarmPool) else None


class WarmPool:
    """Standby containers: intent, fill, hand-over, trim (see the module docstring).

    ``service`` is the SessionService (its backend, config, image and limits rules); ``owner``
    names the process that fills (standbys of another owner are a former leader's and removed);
    ``idle_seconds``: a standby older than this is removed (SM_POOL_IDLE_SECONDS).
    """

    def __init__(
        self,
        service: Any,
        *,
        owner: str,
        idle_seconds: int = DEFAULT_IDLE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
        memory_available: Callable[[], int | None] = available_memory,
    ) -> None:
        self.service = service
        self.backend = service.backend
        self.config = service.config
        self.owner = owner
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.memory_available = memory_available
        self.wake = threading.Event()  # set on intent: the filler runs at once

    @property
    def usable(self) -> bool:
        return bool(getattr(self.backend, "pool_capable", False))

    def slot_dir(self, slot: str) -> Path:
        return self.config.data_dir / "system" / "pool" / slot

    # ------------------------------------------------------------------ intent (request side)

    def note_intent(
        self, db: DbSession, user_id: int, group: ScriptGroup, project_id: int, interactive: bool
    ) -> None:
        """Record that the user may soon run a script of ``group`` in the project.

        Cheap (one row); the caller commits. Nothing when the group has no pool.
        """
        if not self.usable or not (group.pool_size or 0) > 0:
            return
        row = (
            db.execute(
                select(PoolDemand).where(
                    PoolDemand.group_id == group.id,
                    PoolDemand.user_id == user_id,
                    PoolDemand.project_id == project_id,
                    PoolDemand.interactive.is_(interactive),
                )
            )
            .scalars()
            .first()
        )
        if row is None:
            db.add(PoolDemand(group_id=group.id, user_id=user_id, project_id=project_id,
                              interactive=interactive, seen_at=self.clock()))  # fmt: skip
        else:
            row.seen_at = self.clock()
        self.wake.set()

    def note_page(
        self, db: DbSession, user: Any, group: ScriptGroup, project_id: int | None,
        scripts: Iterable[Any] | None = None,
    ) -> None:  # fmt: skip
        """A user who may run scripts opened a page of ``group`` (or a script's run form):
        record intent for the kinds (interactive or batch) of ``scripts`` and commit."""
        if not self.usable or not (group.pool_size or 0) > 0 or project_id is None:
            return
        if not user.reaches("operator"):
            return
        from manager.sessions.service import is_interactive

        chosen = list(scripts) if scripts is not None else list(group.scripts)
        kinds = {is_interactive(s, self.config.groups_dir) for s in chosen if s.is_active}
        self.record_intents(db, [(user.id, group, project_id, flag) for flag in kinds])

    def record_intents(self, db: DbSession, intents: Iterable[tuple[int, Any, int, bool]]) -> None:
        """``note_intent`` each (user id, group, project id, interactive), then commit.

        Two requests of one user at once may both insert the same row: the loser's intent is
        already recorded by the winner, so its unique-constraint error is dropped.
        """
        try:
            for user_id, group, project_id, interactive in intents:
                self.note_intent(db, user_id, group, project_id, interactive)
            db.commit()
        except IntegrityError:
            db.rollback()

    # ------------------------------------------------------------------ hand-over

    def claim(
        self, db: DbSession, *, execution_uuid: str, group_id: int, user_id: int,
        project_id: int, key: str,
    ) -> PoolSlot | None:  # fmt: skip
        """Take a matching standby for ``execution_uuid``, or None. Commits.

        Exactly one caller wins a standby: the update only matches it while it is a standby.
        A ready standby (its runner waits with Flask imported) goes before one still starting.
        The filler is woken ``REFILL_DELAY`` seconds later, once this run has started.
        """
        candidates = list(
            db.execute(
                select(PoolSlot.id, PoolSlot.slot)
                .where(
                    PoolSlot.group_id == group_id,
                    PoolSlot.user_id == user_id,
                    PoolSlot.project_id == project_id,
                    PoolSlot.key == key,
                    PoolSlot.state == "standby",
                )
                .order_by(PoolSlot.created_at)
            )
        )
        candidates.sort(key=lambda found: not self.is_ready(found.slot))  # stable: oldest first
        for slot_id, _ in candidates:
            taken = db.execute(
                update(PoolSlot)
                .where(PoolSlot.id == slot_id, PoolSlot.state == "standby")
                .values(state="handed", execution_uuid=execution_uuid, handed_at=self.clock())
                .execution_options(synchronize_session=False)
            )
            db.commit()
            if getattr(taken, "rowcount", 0) == 1:
                self._wake_later(REFILL_DELAY)
                return db.execute(
                    select(PoolSlot)
                    .where(PoolSlot.id == slot_id)
                    .execution_options(populate_existing=True)
                ).scalar_one_or_none()
        return None

    def is_ready(self, slot: str) -> bool:
        """Whether a standby's runner waits for its context with Flask imported (True when the
        backend keeps no capture folder to tell)."""
        capture_dir = getattr(self.backend, "capture_dir", None)
        if not isinstance(capture_dir, Path):
            return True
        return (capture_dir / pool_execution_id(slot) / READY_FILE).exists()

    def _wake_later(self, delay: float) -> None:
        timer = threading.Timer(delay, self.wake.set)
        timer.daemon = True
        timer.start()

    def hand_over(self, row: PoolSlot, execution_uuid: str, context_file: Path) -> Handle:
        """Give a claimed standby its run: capture folder renamed, context written.

        Raises OSError or BackendError; the caller then removes the standby and goes cold.
        """
        rename = getattr(self.backend, "rename_capture", None)
        if rename is not None:
            rename(pool_execution_id(row.slot), execution_uuid)
        folder = self.slot_dir(row.slot)
        partial = folder / ".context.json.partial"
        write_context_file(partial, json.loads(context_file.read_text("utf-8")))
        os.replace(partial, folder / "context.json")  # the runner never sees half a file
        state = {**(row.backend_state or {}), "pool_slot": row.slot}
        return Handle(execution_uuid=execution_uuid, state=state)

    def discard(self, db: DbSession, row: PoolSlot, execution_uuid: str | None = None) -> None:
        """Remove a slot's container, folders and row (a failed hand-over, a trimmed standby)."""
        handle = Handle(execution_uuid=execution_uuid or pool_execution_id(row.slot),
                        state=dict(row.backend_state or {}))  # fmt: skip
        try:
            if handle.state:
                self.backend.stop(handle, now=True)
            self.backend.remove(handle)
            if execution_uuid is not None:  # a failed hand-over: its renamed capture folder
                self.backend.remove(Handle(execution_uuid=pool_execution_id(row.slot), state={}))
        except BackendError as exc:
            log.warning("pool: removing slot %s: %s %s", row.slot, exc.message, exc.detail)
        shutil.rmtree(self.slot_dir(row.slot), ignore_errors=True)
        db.execute(delete(PoolSlot).where(PoolSlot.id == row.id))
        db.commit()

    # ------------------------------------------------------------------ background

    def maintain(self, db: DbSession) -> None:
        """One pass: forget handed slots whose run ended, trim, then fill. Never raises for
        one bad slot."""
        self.wake.clear()
        if not self.usable:
            return
        pooled = db.execute(select(ScriptGroup.id).where(ScriptGroup.pool_size > 0)).first()
        if pooled is None and db.execute(select(PoolSlot.id)).first() is None:
            db.rollback()  # off everywhere and nothing left: no writes at all on this pass
            return
        self._forget_finished(db)
        self.trim(db)
        self.fill(db)

    def _forget_finished(self, db: DbSession) -> None:
        live = (
            select(Execution.execution_uuid)
            .join(ScriptProcess, ScriptProcess.execution_id == Execution.id)
            .where(ScriptProcess.status.in_(("starting", "running", "stopping")))
        )
        done = select(PoolSlot.id).where(
            PoolSlot.state == "handed", PoolSlot.execution_uuid.not_in(live)
        )
        ids = list(db.execute(done).scalars())
        if ids:
            db.execute(
                delete(PoolSlot)
                .where(PoolSlot.id.in_(ids))
                .execution_options(synchronize_session=False)
            )
            db.commit()

    def _group_keys(self, group: ScriptGroup) -> set[str] | None:
        """The keys a standby of ``group`` may have now (None: the group cannot run)."""
        from manager.sessions.service import SessionError, effective_limits

        try:
            limits = effective_limits(self.config.default_limits, group)
            image = self.service.image_for(group.conda_environment or "base")
        except (SessionError, BackendError):
            return None
        return {
            pool_key(image, limits, session_network(limits, interactive=flag))
            for flag in (True, False)
        }

    def trim(self, db: DbSession) -> None:
        """Remove standbys that are idle too long, of another (former) owner, of a group whose
        image, limits or pool size changed, or of a deactivated user."""
        cutoff = self.clock() - timedelta(seconds=self.idle_seconds)
        rows = list(db.execute(select(PoolSlot).where(PoolSlot.state.in_(STANDING))).scalars())
        keys: dict[int, set[str] | None] = {}
        for row in rows:
            group = db.get(ScriptGroup, row.group_id)
            user = db.get(User, row.user_id)
            if row.group_id not in keys and group is not None:
                keys[row.group_id] = self._group_keys(group) if group.pool_size else None
            reason = None
            if row.owner != self.owner:
                reason = "left by a manager that stopped"
            elif row.created_at < cutoff:
                reason = f"idle for {self.idle_seconds} s"
            elif group is None or not group.pool_size or row.key not in (keys[row.group_id] or ()):
                reason = "its group's image, limits or pool size changed"
            elif user is None or not user.is_active:
                reason = "its user was deactivated"
            elif row.state == "standby" and self._ended(row):
                reason = "its container is no longer running"
            if reason is not None:
                self._remove(db, row, reason)
        if db.execute(select(PoolDemand.id).where(PoolDemand.seen_at < cutoff)).first():
            db.execute(delete(PoolDemand).where(PoolDemand.seen_at < cutoff))
            db.commit()

    def _ended(self, row: PoolSlot) -> bool:
        """Whether a standby's container stopped (killed, out of memory, engine restarted)."""
        handle = Handle(execution_uuid=pool_execution_id(row.slot), state=row.backend_state or {})
        try:
            return self.backend.poll(handle) is not None
        except BackendError:
            return False  # the engine is away: judge on a later pass

    def _remove(self, db: DbSession, row: PoolSlot, reason: str) -> None:
        taken = db.execute(
            update(PoolSlot)
            .where(PoolSlot.id == row.id, PoolSlot.state.in_(STANDING))
            .values(state="removing")
            .execution_options(synchronize_session=False)
        )
        db.commit()
        if getattr(taken, "rowcount", 0) != 1:
            return  # handed over meanwhile
        db.refresh(row)
        log.info("pool: removing standby %s (%s)", row.slot, reason)
        self.discard(db, row)

    def release_all(self, db: DbSession) -> None:
        """At shutdown: remove every standby this process filled."""
        rows = db.execute(
            select(PoolSlot).where(PoolSlot.state.in_(STANDING), PoolSlot.owner == self.owner)
        ).scalars()
        for row in list(rows):
            self._remove(db, row, "manager shutting down")

    def fill(self, db: DbSession) -> None:
        """Start the standbys that recent intent asks for, within the caps."""
        cutoff = self.clock() - timedelta(seconds=self.idle_seconds)
        demands = list(
            db.execute(
                select(PoolDemand).where(PoolDemand.seen_at >= cutoff).order_by(PoolDemand.seen_at)
            ).scalars()
        )
        for demand in demands:
            try:
                self._fill_one(db, demand)
            except (BackendError, OSError, ValueError) as exc:
                detail = exc.detail if isinstance(exc, BackendError) else ""
                log.warning("pool: filling for user %s: %s %s", demand.user_id, exc, detail)
                db.rollback()

    def _fill_one(self, db: DbSession, demand: PoolDemand) -> None:
        from manager.sessions.service import effective_limits

        group = db.get(ScriptGroup, demand.group_id)
        user = db.get(User, demand.user_id)
        project = db.get(UserProject, demand.project_id)
        if group is None or not group.pool_size or not group.is_active or group.invalid_reason:
            return
        if user is None or not user.is_active or project is None or project.user_id != user.id:
            return
        if self._just_handed(db, group.id, user.id, project.id):
            return  # its replacement starts once the run it went to has started (REFILL_DELAY)
        limits = effective_limits(self.config.default_limits, group)
        image = self.service.image_for(group.conda_environment or "base")
        network = session_network(limits, interactive=demand.interactive)
        key = pool_key(image, limits, network)
        have = db.execute(
            select(func.count(PoolSlot.id)).where(
                PoolSlot.group_id == group.id,
                PoolSlot.user_id == user.id,
                PoolSlot.project_id == project.id,
                PoolSlot.key == key,
                PoolSlot.state.in_(STANDING),
            )
        ).scalar_one()
        for _ in range(max(0, group.pool_size - have)):
            if not self._room(db, user.id, limits):
                return
            self._create(db, group, user.id, project.id, image, limits, key, demand.interactive)

    def _just_handed(self, db: DbSession, group_id: int, user_id: int, project_id: int) -> bool:
        """Whether a standby of this (group, user, project) was handed over less than
        ``REFILL_DELAY`` seconds ago (read from the rows: any manager process may have)."""
        since = self.clock() - timedelta(seconds=REFILL_DELAY)
        found = db.execute(
            select(PoolSlot.id).where(
                PoolSlot.group_id == group_id,
                PoolSlot.user_id == user_id,
                PoolSlot.project_id == project_id,
                PoolSlot.state == "handed",
                PoolSlot.handed_at > since,
            )
        ).first()
        return found is not None

    def _room(self, db: DbSession, user_id: int, limits: Limits) -> bool:
        """Whether one more container fits: standbys count like sessions against the
        server-wide cap, SM_MAX_SESSIONS_PER_USER and the host's free memory."""
        sessions = select(func.count(ScriptProcess.id)).where(ScriptProcess.status.in_(COUNTED))
        standbys = select(func.count(PoolSlot.id)).where(PoolSlot.state.in_(STANDING))
        total = db.execute(sessions).scalar_one() + db.execute(standbys).scalar_one()
        if total + 1 > self.config.max_concurrent:
            return False
        mine = db.execute(sessions.where(ScriptProcess.user_id == user_id)).scalar_one()
        mine += db.execute(standbys.where(PoolSlot.user_id == user_id)).scalar_one()
        if mine + 1 > self.config.max_per_user:
            return False
        free = self.memory_available()
        return free is None or free - parse_size(limits.memory) > MEMORY_RESERVE

    def _create(
        self, db: DbSession, group: ScriptGroup, user_id: int, project_id: int, image: str,
        limits: Limits, key: str, interactive: bool,
    ) -> None:  # fmt: skip
        slot = uuid.uuid4().hex
        row = PoolSlot(slot=slot, group_id=group.id, user_id=user_id, project_id=project_id,
                       key=key, state="creating", owner=self.owner, backend_state={},
                       created_at=self.clock())  # fmt: skip
        db.add(row)
        db.commit()  # before the container: the orphan sweep must know the slot
        folder = self.slot_dir(slot)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o755)
            workspace = workspace_dir(self.config.data_dir, group.directory_path, user_id,
                                      project_id)  # fmt: skip
            prepare_workspace(workspace)
            spec = build_pool_spec(
                slot=slot,
                image=image,
                script_host_dir=str(self.config.groups_dir / group.directory_path),
                workspace_host_dir=str(workspace),
                slot_host_dir=str(folder),
                limits=limits,
                user_id=user_id,
                group_id=group.id,
                project_id=project_id,
                interactive=interactive,
                instance=self.config.instance,
            )
            handle = self.backend.start(spec)
        except (BackendError, OSError, ValueError):
            shutil.rmtree(folder, ignore_errors=True)
            db.execute(delete(PoolSlot).where(PoolSlot.id == row.id))
            db.commit()
            raise
        row.backend_state = self.backend.get_state(handle)
        row.state = "standby"
        db.commit()
        log.info("pool: standby %s for user %s, group %s", slot, user_id, group.id)

    def slots(self, db: DbSession, states: Iterable[str] = STANDING) -> list[PoolSlot]:
        return list(db.execute(select(PoolSlot).where(PoolSlot.state.in_(tuple(states)))).scalars())
