"""Socket.IO: a live room per run, a room per user for the dashboard, batched emits.

Namespace ``/logs``. Client events: ``join`` {execution_id, last_seq?, streams?}, ``leave``
{execution_id}, ``join_user``. Server events: ``lines`` {execution_id, lines: [[seq, ts, stream,
text], ...], replay?}, ``status`` {execution_id, status, exit_code}, ``viewers`` {execution_id,
count}, ``error`` {execution_id?, message}.

No gap, no repeat: a channel knows ``published``, the last seq handed to its rooms. A joiner
is sent the stored lines after its ``last_seq`` up to ``published`` from the file, then (without
yielding in between) enters the room, whose next batch starts at ``published + 1``. Lines reach
the rooms only after they are in the file, so everything up to ``published`` can be replayed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app, request
from flask_login import current_user
from flask_socketio import Namespace, SocketIO
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from manager.logs.hub import LogHub
from manager.logs.store import STREAMS, Line, count_lines, iter_lines
from manager.models import Execution

log = logging.getLogger("scriptsmanager")

NAMESPACE = "/logs"
MAX_MESSAGE = 256 * 1024  # bytes of line text per message; larger batches are split
# Messages queued for one client: above HIGH it leaves the live room (nothing is lost: what
# was queued still goes out) and, once below LOW, catches up from the file like a late joiner.
BACKLOG_HIGH = 64
BACKLOG_LOW = 4
LINE_OVERHEAD = 48  # JSON bytes of a line besides its text: seq, stamp, stream, quotes
BITS = {"stdout": 1, "stderr": 2, "debug": 4}
ALL = 7


def mask_of(streams: Iterable[str] | None) -> int:
    """Bit mask of the streams asked for; every stream when none (or none known) is named."""
    mask = 0 if streams is None else sum(BITS.get(s, 0) for s in set(streams))
    return mask or ALL


def streams_of(mask: int) -> tuple[str, ...]:
    return tuple(s for s in STREAMS if mask & BITS[s])


def run_room(execution_uuid: str, mask: int) -> str:
    return f"run:{execution_uuid}:{mask}"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def async_mode() -> str:
    """``gevent`` when the standard library is patched (``serve``), else ``threading``."""
    try:
        from gevent import monkey
    except ImportError:
        return "threading"
    return "gevent" if monkey.is_module_patched("socket") else "threading"


def chunks(lines: list[Line], limit: int) -> Iterable[tuple[Line, ...]]:
    """Split lines into messages of about ``limit`` bytes of JSON.

    Tuples, not lists: python-socketio looks for binary data in every list and dict of a
    message before sending it (a function call a line); tuples, which it does not look into,
    go into JSON arrays all the same.
    """
    start, size = 0, 0
    for index, line in enumerate(lines):
        size += len(line.text) + LINE_OVERHEAD
        if size >= limit and index > start:
            yield tuple(lines[start:index])
            start, size = index, len(line.text) + LINE_OVERHEAD
    if start < len(lines):
        yield tuple(lines[start:])


@dataclass
class Channel:
    """One watched run: what its rooms were sent, what waits for the next batch, who watches."""

    execution_uuid: str
    user_id: int
    path: Path
    published: int
    pending: list[Line] = field(default_factory=list)
    watchers: dict[str, int] = field(default_factory=dict)  # sid -> stream mask
    behind: set[str] = field(default_factory=set)  # watchers out of the room, catching up

    def masks(self) -> set[int]:
        return {mask for sid, mask in self.watchers.items() if sid not in self.behind}

    @property
    def known(self) -> int:
        return self.pending[-1].seq if self.pending else self.published


class LiveLogs:
    """Rooms, batches and viewer counts of this process; fed by the ``LogHub``."""

    def __init__(self, server: Any, hub: LogHub, *, max_message: int = MAX_MESSAGE):
        self.server = server  # the python-socketio server
        self.hub = hub
        self.shared = False  # True with several processes (Redis): see ``relay``
        self.max_message = max_message
        self._channels: dict[str, Channel] = {}
        self._joined: dict[str, set[str]] = {}  # sid -> execution uuids
        self._statuses: list[tuple[str, int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        hub.listeners.append(self.publish)
        hub.tick_hooks.append(self.tick)

    # ------------------------------------------------------------------ fed by the hub

    def publish(self, execution_uuid: str, lines: list[Line]) -> None:
        """Queue flushed lines for the run's rooms (dropped when nobody watches)."""
        with self._lock:
            channel = self._channels.get(execution_uuid)
            if channel is None:
                return
            known = channel.known
            channel.pending.extend(line for line in lines if line.seq > known)

    def status_changed(self, execution_uuid: str, user_id: int, status: str, code: Any) -> None:
        payload = {"execution_id": execution_uuid, "status": status, "exit_code": code}
        with self._lock:
            self._statuses.append((execution_uuid, user_id, payload))

    def tick(self) -> None:
        """Send each watched run's pending lines as one batch per room, then status changes."""
        lagging: list[tuple[str, Channel, int, int]] = []
        with self._lock:
            for channel in self._channels.values():
                if channel.pending:
                    self._send_batch(channel)
                    for sid, mask in channel.watchers.items():
                        if sid not in channel.behind and self.backlog(sid) > BACKLOG_HIGH:
                            lagging.append((sid, channel, channel.published, mask))
            for sid, channel, _seq, mask in lagging:
                channel.behind.add(sid)
                self.server.leave_room(sid, run_room(channel.execution_uuid, mask), NAMESPACE)
            statuses, self._statuses = self._statuses, []
            for execution_uuid, user_id, payload in statuses:
                watched = self._channels.get(execution_uuid)
                masks = set(watched.watchers.values()) if watched else set()
                if self.shared:  # watchers may be in another process: every room of the run
                    masks = set(range(1, ALL + 1))
                rooms = {run_room(execution_uuid, mask) for mask in masks}
                for room in rooms | {user_room(user_id)}:
                    self.server.emit("status", payload, to=room, namespace=NAMESPACE)
        for sid, channel, seq, mask in lagging:
            self.server.start_background_task(self._catch_up, sid, channel, seq, mask)

    def backlog(self, sid: str) -> int:
        """Messages queued for ``sid`` and not sent yet (0 when unknown)."""
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        socket = self.server.eio.sockets.get(eio_sid) if eio_sid else None
        return socket.queue.qsize() if socket is not None else 0

    def _catch_up(self, sid: str, channel: Channel, seq: int, mask: int) -> None:
        while self.backlog(sid) > BACKLOG_LOW:
            if sid not in channel.watchers:
                return  # it left or went away meanwhile
            self.server.sleep(0.05)
        if sid in channel.watchers:
            self.join(sid, channel.execution_uuid, channel.user_id, channel.path, seq, mask)

    def _send_batch(self, channel: Channel) -> None:
        lines, channel.pending = channel.pending, []
        channel.published = lines[-1].seq
        for mask in channel.masks():
            wanted = streams_of(mask)
            chosen = lines if mask == ALL else [line for line in lines if line.stream in wanted]
            for part in chunks(chosen, self.max_message):
                self.server.emit(
                    "lines",
                    {"execution_id": channel.execution_uuid, "lines": part},
                    to=run_room(channel.execution_uuid, mask),
                    namespace=NAMESPACE,
                )

    # ------------------------------------------------------------------ watchers

    def join(self, sid: str, uuid: str, user_id: int, path: Path, last_seq: int, mask: int) -> None:
        """Replay what ``sid`` lacks from the file, then add it to the run's live room."""
        wanted = streams_of(mask)
        with self._lock:
            channel = self._channels.get(uuid)
            current = channel.watchers.get(sid) if channel is not None else None
            new = current is None
            if channel is not None and current is not None and sid not in channel.behind:
                # Joined again (other streams, an older seq): out of the room while it replays.
                channel.behind.add(sid)
                self.server.leave_room(sid, run_room(uuid, current), namespace=NAMESPACE)
        while True:
            with self._lock:
                channel = self._channels.get(uuid)
                if channel is None:
                    channel = Channel(uuid, user_id, path, count_lines(path))
                    self._channels[uuid] = channel
                target = channel.published
                if last_seq >= target:
                    channel.watchers[sid] = mask
                    channel.behind.discard(sid)
                    self._joined.setdefault(sid, set()).add(uuid)
                    self.server.enter_room(sid, run_room(uuid, mask), namespace=NAMESPACE)
                    count = len(channel.watchers)
                    break
            last_seq = self._replay(sid, uuid, path, last_seq, target, wanted)
        if new:
            self._send_viewers(uuid, count)

    def _replay(
        self, sid: str, uuid: str, path: Path, after: int, until: int, wanted: tuple[str, ...]
    ) -> int:
        rows: list[Line] = []
        size = 0
        for line in iter_lines(path, after_seq=after, until_seq=until, streams=wanted):
            rows.append(line)
            size += len(line.text) + LINE_OVERHEAD
            if size >= self.max_message:
                self._send_replay(sid, uuid, rows)
                rows, size = [], 0
        if rows:
            self._send_replay(sid, uuid, rows)
        return until

    def _send_replay(self, sid: str, uuid: str, rows: list[Line]) -> None:
        payload = {"execution_id": uuid, "lines": tuple(rows), "replay": True}  # see chunks
        while self.backlog(sid) > BACKLOG_HIGH:  # a long replay goes at the client's pace
            self.server.sleep(0.05)
        self.server.emit("lines", payload, to=sid, namespace=NAMESPACE)
        self.server.sleep(0)  # let the socket's writer send it before the next chunk

    def leave(self, sid: str, execution_uuid: str) -> None:
        count = None
        with self._lock:
            channel = self._channels.get(execution_uuid)
            if channel is not None and sid in channel.watchers:
                mask = channel.watchers.pop(sid)
                channel.behind.discard(sid)
                self.server.leave_room(sid, run_room(execution_uuid, mask), namespace=NAMESPACE)
                count = len(channel.watchers)
                if not channel.watchers:
                    del self._channels[execution_uuid]
            self._joined.get(sid, set()).discard(execution_uuid)
        if count is not None:
            self._send_viewers(execution_uuid, count)

    def disconnect(self, sid: str) -> None:
        for execution_uuid in list(self._joined.get(sid, ())):
            self.leave(sid, execution_uuid)
        self._joined.pop(sid, None)

    def viewer_count(self, execution_uuid: str) -> int:
        """How many connections watch the run now (in this process)."""
        channel = self._channels.get(execution_uuid)
        return len(channel.watchers) if channel is not None else 0

    def _send_viewers(self, execution_uuid: str, count: int) -> None:
        channel = self._channels.get(execution_uuid)
        payload = {"execution_id": execution_uuid, "count": count}
        for mask in set(channel.watchers.values()) if channel else ():
            self.server.emit(
                "viewers", payload, to=run_room(execution_uuid, mask), namespace=NAMESPACE
            )


# ---------------------------------------------------------------------- Socket.IO handlers


def live() -> LiveLogs:
    found: Any = current_app.extensions["sm_live_logs"]
    return found


class LogsNamespace(Namespace):
    """The ``/logs`` handlers; users come from the session cookie (or a bearer token)."""

    def on_connect(self, auth: Any = None) -> bool:
        return bool(current_user.is_authenticated)

    def on_disconnect(self, *args: Any) -> None:
        live().disconnect(request.sid)  # type: ignore[attr-defined]

    def on_join(self, data: Any) -> None:
        from manager.extensions import db

        data = data if isinstance(data, dict) else {}
        uuid = str(data.get("execution_id") or "")
        try:
            last_seq = max(0, int(data.get("last_seq") or 0))
        except (TypeError, ValueError):
            last_seq = 0
        streams = data.get("streams")
        mask = mask_of(streams if isinstance(streams, list) else None)
        execution = db.session.execute(
            select(Execution).where(Execution.execution_uuid == uuid)
        ).scalar_one_or_none()
        user = current_user
        if execution is None or not (execution.user_id == user.id or user.is_admin):
            # The same answer for "not yours" and "no such run": ids are not disclosed.
            self.emit("error", {"execution_id": uuid, "message": "No such run of yours."})
            return
        path = live().hub.path_for(execution)
        owner = execution.user_id
        db.session.remove()  # the replay may take a while: hold no connection meanwhile
        live().join(request.sid, uuid, owner, path, last_seq, mask)  # type: ignore[attr-defined]

    def on_leave(self, data: Any) -> None:
        uuid = str((data or {}).get("execution_id") or "") if isinstance(data, dict) else ""
        live().leave(request.sid, uuid)  # type: ignore[attr-defined]

    def on_join_user(self, data: Any = None) -> None:
        live().server.enter_room(
            request.sid,  # type: ignore[attr-defined]
            user_room(current_user.id),
            namespace=NAMESPACE,
        )


# ---------------------------------------------------------------------- status changes

_LISTENING = False


def _collect_statuses(session: Session, _context: Any) -> None:
    """After a flush: remember runs that were created or changed state."""
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Execution) and (
            obj in session.new or inspect(obj).attrs.status.history.has_changes()
        ):
            found = session.info.setdefault("sm_statuses", {})
            found[obj.execution_uuid] = (obj.user_id, obj.status, obj.exit_code)


def _send_statuses(session: Session) -> None:
    changes = session.info.pop("sm_statuses", None)
    if not changes:
        return
    try:
        watcher: LiveLogs | None = current_app.extensions.get("sm_live_logs")
    except RuntimeError:  # no app context: nobody to tell
        return
    if watcher is not None:
        for uuid, (user_id, status, code) in changes.items():
            watcher.status_changed(uuid, user_id, status, code)


def _forget_statuses(session: Session, *_: Any) -> None:
    session.info.pop("sm_statuses", None)


def _listen_once() -> None:
    global _LISTENING
    if _LISTENING:
        return
    event.listen(Session, "after_flush", _collect_statuses)
    event.listen(Session, "after_commit", _send_statuses)
    event.listen(Session, "after_rollback", _forget_statuses)
    _LISTENING = True


def init_app(app: Flask, socketio: SocketIO) -> LiveLogs:
    """Register the ``/logs`` handlers on ``socketio`` (already ``init_app``-ed for ``app``)."""
    hub: LogHub = app.extensions["sm_logs"]
    watcher = LiveLogs(socketio.server, hub)
    app.extensions["sm_live_logs"] = watcher
    redis_url = app.config.get("SM_REDIS_URL")
    if redis_url:
        from manager.logs.relay import RedisRelay

        relay = RedisRelay(redis_url, watcher.publish, hub.debug_forwarded)
        hub.listeners.remove(watcher.publish)  # batches reach every process over Redis
        hub.listeners.append(relay.publish)
        hub.forward_debug = relay.forward_debug
        watcher.shared = True
        app.extensions["sm_log_relay"] = relay
        if hub.settings.live_pumps:
            relay.start()
    socketio.on_namespace(LogsNamespace(NAMESPACE))
    _listen_once()
    return watcher
