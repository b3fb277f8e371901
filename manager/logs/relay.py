"""Live log lines across manager processes, over Redis.

Only the session monitor's leader runs log pumps (see ``SessionMonitor``), but a browser may
watch a run from any process. With ``SM_REDIS_URL`` set, every flushed batch is published on one
Redis channel instead of going to this process's rooms directly, and every process (the pump's
own included) feeds what it receives to its ``LiveLogs``. One channel keeps each run's batches in
order; watchers replay from the shared log file first and de-duplicate by ``seq``. Status
changes need nothing of this: Socket.IO's own Redis message queue carries room emits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from manager.logs.store import Line

log = logging.getLogger("scriptsmanager")

CHANNEL = "scriptsmanager:log-lines"
DEBUG_CHANNEL = "scriptsmanager:log-debug"  # lifecycle lines for the process that writes files
RETRY = 1.0  # seconds before reconnecting to a Redis that went away

Publish = Callable[[str, list[Line]], None]
WriteDebug = Callable[[str, str, str], None]


def encode(execution_uuid: str, lines: list[Line]) -> str:
    return json.dumps([execution_uuid, lines])  # a Line is a JSON array


def decode(message: str | bytes) -> tuple[str, list[Line]]:
    execution_uuid, rows = json.loads(message)
    return str(execution_uuid), [Line(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


class RedisRelay:
    """Publishes this process's flushed batches; delivers every process's to ``deliver``."""

    def __init__(
        self, url: str, deliver: Publish, write_debug: WriteDebug, channel: str = CHANNEL
    ) -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url)
        self.deliver = deliver
        self.write_debug = write_debug
        self.channel = channel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, execution_uuid: str, lines: list[Line]) -> None:
        """A hub listener: send the batch to every process (this one too)."""
        try:
            self.client.publish(self.channel, encode(execution_uuid, lines))
        except Exception as exc:  # noqa: BLE001 - Redis down: the file keeps every line
            log.warning("log relay: cannot publish to Redis: %s", exc)

    def forward_debug(self, execution_uuid: str, message: str, stamp: str) -> None:
        """Hand a lifecycle line to the process that writes the run's file."""
        try:
            self.client.publish(DEBUG_CHANNEL, json.dumps([execution_uuid, message, stamp]))
        except Exception as exc:  # noqa: BLE001 - the row keeps lifecycle notes too
            log.warning("log relay: cannot forward a debug line: %s", exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="sm-log-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel, DEBUG_CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    if message["channel"] in (DEBUG_CHANNEL, DEBUG_CHANNEL.encode()):
                        uuid, text, stamp = json.loads(message["data"])
                        self.write_debug(str(uuid), str(text), str(stamp))
                    else:
                        self.deliver(*decode(message["data"]))
            except Exception as exc:  # noqa: BLE001 - reconnect; watchers catch up from the file
                log.warning("log relay: Redis subscription failed: %s", exc)
                time.sleep(RETRY)
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    log.debug("log relay: closing the subscription failed", exc_info=True)
