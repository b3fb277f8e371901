"""Watch the script groups folder and report which group changed, debounced.

Saving a file produces a burst of events (create, modify, move of an editor's temporary
file); the watcher waits until the folder has been quiet for ``debounce`` seconds, then calls
``on_change(group_dir_name)`` once per changed group, or once with ``None`` when the top
level itself changed (a group folder appeared or went away). The callback runs in the
watcher's timer thread; it should open its own database session.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

IGNORED_PARTS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".tmp", "~")


class CatalogWatcher:
    """Call ``on_change(group | None)`` after files under ``groups_dir`` change.

    ``polling=True`` uses watchdog's stat-polling observer instead of inotify: slower to
    notice, but it works on network file systems and under gevent's monkey-patching.
    """

    def __init__(
        self,
        groups_dir: Path,
        on_change: Callable[[str | None], None],
        *,
        debounce: float = 0.5,
        polling: bool = False,
    ) -> None:
        self.groups_dir = Path(groups_dir).resolve()
        self.on_change = on_change
        self.debounce = debounce
        self.polling = polling
        self._lock = threading.Lock()
        self._pending: set[str | None] = set()
        self._timer: threading.Timer | None = None
        self._observer: BaseObserver | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._observer is not None

    def start(self) -> None:
        """Start watching; raises ``FileNotFoundError`` if ``groups_dir`` does not exist."""
        if self._observer is not None:
            return
        if not self.groups_dir.is_dir():
            raise FileNotFoundError(f"script groups folder {self.groups_dir} does not exist")
        observer = PollingObserver(timeout=0.5) if self.polling else Observer()
        _fit_for_gevent(observer)
        observer.schedule(_Handler(self), str(self.groups_dir), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        """Stop watching; changes still waiting for the debounce are dropped."""
        observer, self._observer = self._observer, None
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._pending.clear()
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    def group_of(self, raw_path: str | bytes, is_directory: bool) -> tuple[bool, str | None]:
        """Map an event path to ``(relevant, group)``; group is None for the top level."""
        text = raw_path.decode() if isinstance(raw_path, bytes) else raw_path
        try:
            parts = Path(text).resolve().relative_to(self.groups_dir).parts
        except ValueError:
            return False, None
        if not parts:
            return True, None
        if any(part in IGNORED_PARTS for part in parts) or parts[-1].endswith(IGNORED_SUFFIXES):
            return False, None
        if parts[0].startswith((".", "_")):
            return False, None
        if len(parts) == 1:
            # A group folder itself (created, removed, renamed): rescan everything. A plain
            # file at the top level (a README) belongs to no group.
            return (True, None) if is_directory else (False, None)
        return True, parts[0]

    def notify(self, group: str | None) -> None:
        """Record a change and (re)start the debounce timer."""
        with self._lock:
            self._pending.add(group)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.debounce, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, set()
            self._timer = None
        targets: list[str | None] = [None]
        if None not in pending:
            targets = [*sorted(group for group in pending if group is not None)]
        for group in targets:
            try:
                self.on_change(group)
            except Exception:  # the watcher thread must survive a failing callback
                log.exception("catalog refresh for %s failed", group or "all groups")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: CatalogWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            return  # a folder's listing changed: its entries report their own events
        paths = [event.src_path]
        if getattr(event, "dest_path", ""):
            paths.append(event.dest_path)
        for path in paths:
            relevant, group = self.watcher.group_of(path, event.is_directory)
            if relevant:
                self.watcher.notify(group)


def _fit_for_gevent(observer: BaseObserver) -> None:
    """Under gevent's monkey-patching, give watchdog a queue that works there.

    watchdog's SkipRepeatsQueue subclasses ``queue.Queue``, which gevent replaces with a class
    whose ``maxsize`` is None: its ``put`` then fails on the first event. gevent's own joinable
    queue does the same job cooperatively (repeats are absorbed by our debounce anyway).
    """
    try:
        from gevent import monkey
    except ImportError:
        return
    if monkey.is_module_patched("threading"):
        from gevent.queue import JoinableQueue

        observer._event_queue = JoinableQueue()
