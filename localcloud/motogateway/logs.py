"""Log events into moto's CloudWatch Logs: one writer for Lambda, ECS and what comes next.

Each stream it writes keeps its latest `max_events` events (LOCALCLOUD_LOG_EVENTS_PER_STREAM,
default 10,000) and drops the oldest: moto keeps events in the daemon's memory, and a Lambda
storm writes four or more per invoke. CloudWatch Logs keeps them all, for the group's
retention period. moto also lists every model instance it ever made (for its dashboard),
which would keep dropped events alive: the writer empties that list for log events.

Lambda's lines are queued (`add_many`) and written by a background flush within FLUSH_S, off
the invoke's path; the gateway flushes before moto serves any request (CloudWatch Logs reads
included), so a reader still finds an invocation's lines as soon as the invoke has answered.
`flush` must not be called with the moto lock held (it takes that lock after its own).
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
        self._creating: set[StreamKey] = set()  # queued streams whose group is created if gone
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
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
            self._start()

    def add_many(self, key: StreamKey, messages: list[str]) -> None:
        """Queue events written within FLUSH_S (or at the next `flush`), creating the group
        and stream as `write` does."""
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": message} for message in messages]
        with self._lock:
            self._pending.setdefault(key, []).extend(events)
            self._creating.add(key)
            self._start()

    def _start(self) -> None:
        """Start the flushing thread on first use (under self._lock)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="logs", daemon=True)
            self._thread.start()

    def flush(self) -> None:
        """Write everything queued so far; lines for a deleted group are dropped, as on AWS."""
        with self._flushing:  # in order: a reader's flush returns after the writes before it
            with self._lock:
                if not self._pending:
                    return
                pending, self._pending = self._pending, {}
                creating, self._creating = self._creating, set()
            for key, events in pending.items():
                self._write_pending(key, events, key in creating)

    def _write_pending(self, key: StreamKey, events: list[dict[str, Any]], create: bool) -> None:
        """Write one stream's queued events (created with its group when `create`)."""
        account, region, group, stream = key
        # One PutLogEvents must be in time order; callers may have queued out of order.
        events.sort(key=lambda event: event["timestamp"])
        try:
            with self._backend("logs", account, region) as logs:
                if create and group not in logs.groups:
                    logs.create_log_group(group, {})
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
