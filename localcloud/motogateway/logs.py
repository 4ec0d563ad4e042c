"""Log events into moto's CloudWatch Logs: one writer for Lambda, ECS and what comes next.

Each stream it writes keeps its latest `max_events` events (LOCALCLOUD_LOG_EVENTS_PER_STREAM,
default 10,000) and drops the oldest: moto keeps events in the daemon's memory, and a Lambda
storm writes four or more per invoke. CloudWatch Logs keeps them all, for the group's
retention period. moto also lists every model instance it ever made (for its dashboard),
which would keep dropped events alive: the writer empties that list for log events.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

log = logging.getLogger("localcloud.logs")

FLUSH_S = 0.2  # batching interval of `add`
EVENTS_PER_STREAM = 10_000
StreamKey = tuple[str, str, str, str]  # account, region, group, stream
# The gateway's locked backend access: backend("logs", account, region) as logs
BackendAccess = Callable[[str, str, str], AbstractContextManager[Any]]


class MissingLogGroup(LookupError):
    """The log group does not exist and may not be created."""


class LogsWriter:
    """Writes log events now (`write`) or batched off the caller's path (`add`)."""

    def __init__(self, backend: BackendAccess, max_events: int | None = None) -> None:
        self._backend = backend
        configured = os.environ.get("LOCALCLOUD_LOG_EVENTS_PER_STREAM", EVENTS_PER_STREAM)
        self.max_events = max(1, int(max_events or configured))
        self._pending: dict[StreamKey, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure_stream(
        self, account: str, region: str, group: str, stream: str, *, create_group: bool
    ) -> None:
        """Create the stream (and the group when `create_group`); MissingLogGroup otherwise."""
        with self._backend("logs", account, region) as logs:
            if group not in logs.groups:
                if not create_group:
                    raise MissingLogGroup(group)
                logs.create_log_group(group, {})
            if stream not in logs.groups[group].streams:
                logs.create_log_stream(group, stream)

    def write(
        self, account: str, region: str, group: str, stream: str, messages: list[str]
    ) -> None:
        """Append messages now, creating the group and stream as Lambda's service does."""
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": message} for message in messages]
        with self._backend("logs", account, region) as logs:
            if group not in logs.groups:
                logs.create_log_group(group, {})
            if stream not in logs.groups[group].streams:
                logs.create_log_stream(group, stream)
            logs.put_log_events(group, stream, events)
            self._trim(logs, group, stream)

    def add(self, key: StreamKey, message: str) -> None:
        """Queue one event for (account, region, group, stream); written within FLUSH_S."""
        event = {"timestamp": int(time.time() * 1000), "message": message}
        with self._lock:
            self._pending.setdefault(key, []).append(event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="logs", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Write everything queued so far; lines for a deleted group are dropped, as on AWS."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for (account, region, group, stream), events in pending.items():
            try:
                with self._backend("logs", account, region) as logs:
                    if stream not in logs.groups[group].streams:
                        logs.create_log_stream(group, stream)
                    logs.put_log_events(group, stream, events)
                    self._trim(logs, group, stream)
            except Exception:  # the group was deleted meanwhile
                log.debug("dropped %d log events for %s", len(events), group)

    def _trim(self, logs: Any, group: str, stream: str) -> None:
        """Drop a stream's oldest events beyond the cap (under the backend's lock)."""
        events = logs.groups[group].streams[stream].events
        if len(events) > self.max_events:
            del events[: len(events) - self.max_events]
        if events:  # moto's models list every instance they made, for its dashboard: not these
            type(events[-1]).instances_tracked.clear()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self.flush()

    def close(self) -> None:
        """Stop the background flushing after a last flush."""
        self._stop.set()
        self.flush()
