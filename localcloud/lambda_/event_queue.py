"""Event (asynchronous) invocations: queued, run by background threads, retried as AWS does.

A function error is retried MaximumRetryAttempts times after the configured delays (AWS: 60 s
and 120 s); a throttle is retried with back-off from 1 s up to 5 minutes until
MaximumEventAgeInSeconds
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..protocols import ServiceError
from ..registry import RequestContext
from .functions import FunctionSpec
from .invocations import Result

log = logging.getLogger("localcloud.lambda")


class Runner(Protocol):
    """What the queue needs of the Lambda provider."""

    def function_spec(
        self, name: str, qualifier: str | None, context: RequestContext
    ) -> FunctionSpec: ...

    def run(self, spec: FunctionSpec, payload: bytes, context: RequestContext) -> Result | None: ...


@dataclass(order=True)
class _QueuedEvent:
    due: float
    sequence: int
    spec: FunctionSpec = field(compare=False)
    payload: bytes = field(compare=False)
    context: RequestContext = field(compare=False)
    received: float = field(compare=False, default_factory=time.monotonic)
    attempts: int = field(compare=False, default=0)
    throttles: int = field(compare=False, default=0)


class EventQueue:
    """Asynchronous invocations: queued, run by background threads, retried as AWS does."""

    def __init__(self, provider: Runner, retry_delays: list[float], threads: int = 2):
        self.provider = provider
        self.retry_delays = retry_delays
        self._heap: list[_QueuedEvent] = []
        self._sequence = 0
        self._condition = threading.Condition()
        self._closed = False
        for n in range(threads):
            threading.Thread(target=self._serve, name=f"lambda-events-{n}", daemon=True).start()

    def submit(self, spec: FunctionSpec, params: dict[str, Any], context: RequestContext) -> None:
        """Queue an Event invocation."""
        self._push(_QueuedEvent(time.monotonic(), 0, spec, params.get("Payload") or b"{}", context))

    def size(self) -> int:
        """Events waiting to run."""
        with self._condition:
            return len(self._heap)

    def clear(self) -> None:
        """Drop every queued event."""
        with self._condition:
            self._heap.clear()

    def close(self) -> None:
        """Stop the background threads."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def _push(self, event: _QueuedEvent) -> None:
        with self._condition:
            self._sequence += 1
            event.sequence = self._sequence
            heapq.heappush(self._heap, event)
            self._condition.notify()

    def _next(self) -> _QueuedEvent | None:
        """The next due event (waiting for it), or None when closing."""
        with self._condition:
            while not self._closed:
                if self._heap and self._heap[0].due <= time.monotonic():
                    return heapq.heappop(self._heap)
                timeout = self._heap[0].due - time.monotonic() if self._heap else None
                self._condition.wait(timeout)
            return None

    def _serve(self) -> None:
        while (event := self._next()) is not None:
            try:
                self._run(event)
            except Exception:  # one bad event must not stop the queue
                log.exception("event invocation of %s failed", event.spec.name)

    def _run(self, event: _QueuedEvent) -> None:
        """Run one event; schedule its retry after an error or a throttle."""
        age = time.monotonic() - event.received
        if age > event.spec.max_event_age_s:
            log.warning("dropping event for %s: older than its maximum age", event.spec.name)
            return
        try:  # the function may have changed or gone since the event was queued
            spec = self.provider.function_spec(event.spec.arn, None, event.context)
        except ServiceError:
            log.warning("dropping event for %s: the function no longer exists", event.spec.name)
            return
        context = RequestContext(event.context.region, event.context.account_id)
        result = self.provider.run(spec, event.payload, context)
        if result is None:  # throttled: back off from 1 s up to 5 minutes
            event.throttles += 1
            event.due = time.monotonic() + min(300.0, 2.0 ** (event.throttles - 1))
            self._push(event)
        elif result.function_error and event.attempts < min(
            spec.max_retry_attempts, len(self.retry_delays)
        ):
            event.due = time.monotonic() + self.retry_delays[event.attempts]
            event.attempts += 1
            self._push(event)
