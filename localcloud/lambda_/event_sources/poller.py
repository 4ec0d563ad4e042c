"""The stream poller of one event source mapping: lanes, batches, invokes, retries, bisect.

Behaviour from https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html: records are read
in order and dropped when no filter matches; each of ParallelizationFactor lanes takes the
records of its partition keys in order; a batch holds up to BatchSize records (and at most
6 MB), waiting up to MaximumBatchingWindowInSeconds for more. A function error retries the
batch until MaximumRetryAttempts or MaximumRecordAgeInSeconds, bisecting first when
BisectBatchOnFunctionError is on (splits are not retries); a partial batch response
checkpoints at the lowest failed sequence number. A throttle is retried without using up
retries. A discarded batch goes to the on-failure destination. With TumblingWindowInSeconds a
batch stays within one window and the window ends with a final invocation (`windows.py`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ...dynamodbstreams.store import StreamRecord, StreamStore
from ...protocols import ServiceError
from ...registry import RequestContext
from . import destinations, filters, windows

if TYPE_CHECKING:
    from ...context import CloudContext
    from ..functions import FunctionSpec

log = logging.getLogger("localcloud.lambda.event_sources")

PAYLOAD_LIMIT = 6 * 1024 * 1024
POLL_SECONDS = 0.25  # Lambda polls each shard four times a second


class Invoker(Protocol):
    """What the poller needs of the Lambda provider."""

    def function_spec(
        self, name: str, qualifier: str | None, context: RequestContext
    ) -> FunctionSpec: ...

    def run(self, spec: FunctionSpec, payload: bytes, context: RequestContext) -> Any: ...


@dataclass
class Lane:
    """The records of some partition keys, in order, and the batch being retried."""

    queue: deque[StreamRecord] = field(default_factory=deque)
    splits: list[int] = field(default_factory=list)  # sizes of the pending sub-batches
    attempts: int = 0  # invocations of the current batch
    throttles: int = 0
    waiting_since: float | None = None  # when the oldest queued record arrived in the lane
    retry_at: float = 0.0
    window: float | None = None  # start of the tumbling window being processed
    state: dict[str, Any] = field(default_factory=dict)  # what the function returned in it


class StreamPoller:
    """Feeds one mapping's stream to its function; `settings()` gives the current config."""

    def __init__(
        self,
        cloud: CloudContext,
        store: StreamStore,
        invoker: Invoker,
        settings: Callable[[], dict[str, Any]],
        on_result: Callable[[str], None],
        position: int,
        retry_seconds: float,
    ) -> None:
        self.cloud, self.store, self.invoker = cloud, store, invoker
        self.settings, self.on_result = settings, on_result
        self.cursor = position  # the last sequence number handed to a lane
        self.retry_seconds = retry_seconds
        self.lanes: list[Lane] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.active = threading.Event()  # set while the mapping is Enabled

    def start(self) -> None:
        """One thread per lane (ParallelizationFactor); pending records are kept in order."""
        count = self.settings()["ParallelizationFactor"]
        with self._lock:
            pending = sorted((r for lane in self.lanes for r in lane.queue), key=_sequence)
            self.lanes = [Lane() for _ in range(count)]
            for record in pending:
                self._lane_of(record).queue.append(record)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._serve, args=(lane,), name="esm-lane", daemon=True)
            for lane in self.lanes
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the lane threads (they finish the invocation they are in)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    def pending(self) -> int:
        with self._lock:
            return sum(len(lane.queue) for lane in self.lanes)

    # ----- reading the stream -----------------------------------------------------------

    def _dispatch(self, config: dict[str, Any]) -> None:
        """Hand the stream's new records to their lanes, dropping those no filter matches."""
        stream = self.store.get(config["EventSourceArn"])
        if stream is None:
            return
        patterns = config["_patterns"]
        with self._lock:
            while True:
                records = self.store.after(stream, self.cursor, 1000)
                if not records:
                    return
                now = time.monotonic()
                for record in records:
                    self.cursor = record.sequence
                    if patterns and not filters.matches_any(
                        patterns, record.lambda_record(stream.region, stream.arn)
                    ):
                        continue
                    lane = self._lane_of(record)
                    if not lane.queue:
                        lane.waiting_since = now
                    lane.queue.append(record)

    def _lane_of(self, record: StreamRecord) -> Lane:
        """Records of one partition key always go to the same lane."""
        return self.lanes[zlib.crc32(record.partition_key.encode()) % len(self.lanes)]

    # ----- one lane ---------------------------------------------------------------------

    def _serve(self, lane: Lane) -> None:
        while not self._stop.is_set():
            if not self.active.is_set():
                self.active.wait(POLL_SECONDS)
                continue
            try:
                config = self.settings()
                self._dispatch(config)
                if not self._step(lane, config):
                    self.store.wait(POLL_SECONDS)
            except Exception:  # a bug must not stop the mapping for good
                log.exception("event source mapping %s failed", self.settings().get("UUID"))
                time.sleep(1)

    def _step(self, lane: Lane, config: dict[str, Any]) -> bool:
        """Invoke one batch if one is due; False when there is nothing to do yet."""
        now = time.monotonic()
        if now < lane.retry_at:
            time.sleep(min(POLL_SECONDS, lane.retry_at - now))
            return True
        seconds = config["TumblingWindowInSeconds"]
        if seconds and self._window_over(lane, seconds):
            return self._final_invoke(lane, config, seconds)
        self._discard_old(lane, config)
        batch = self._batch(lane, config)
        if not batch:
            return False
        stream_arn = config["EventSourceArn"]
        stream = self.store.get(stream_arn)
        region = stream.region if stream else config["_region"]
        event: dict[str, Any] = {"Records": [r.lambda_record(region, stream_arn) for r in batch]}
        if seconds:
            if lane.window is None:
                lane.window = windows.window_of(batch[0].created, seconds)
            shard = stream.shard_id if stream else ""
            event.update(
                windows.event_fields(lane.window, seconds, lane.state, shard, stream_arn, False)
            )
        result = self._invoke(lane, config, json.dumps(event).encode(), batch[-1])
        if result is None:
            return True
        lane.attempts += 1
        failed_from, function_error = self._failure(result, batch, config)
        if seconds and not result.function_error:
            state = windows.returned_state(result.body)
            if state is None:  # a windowed function must return its state
                failed_from, function_error = 0, None
            else:
                lane.state = state
        if failed_from is None:
            self._done(lane, len(batch))
            self.on_result("OK")
            return True
        self.on_result("PROBLEM: Function call failed")
        self._failed(lane, batch, failed_from, function_error, config)
        return True

    def _invoke(
        self, lane: Lane, config: dict[str, Any], payload: bytes, newest: StreamRecord | None
    ) -> Any:
        """Invoke the function; None when it could not run (throttled, gone): retry later."""
        stream = self.store.get(config["EventSourceArn"])
        context = RequestContext(stream.region if stream else config["_region"], config["_account"])
        try:
            spec = self.invoker.function_spec(config["FunctionArn"], None, context)
        except ServiceError:
            self.on_result("PROBLEM: Function not found")
            lane.retry_at = time.monotonic() + self.retry_seconds
            return None
        if newest is not None:
            self._iterator_age(spec.name, newest)
        result = self.invoker.run(spec, payload, context)
        if result is None:  # throttled: retried until the records expire, not counted
            lane.throttles += 1
            lane.retry_at = time.monotonic() + min(5.0, 0.25 * 2**lane.throttles)
            self.on_result("PROBLEM: Function call throttled")
            return None
        lane.throttles = 0
        return result

    def _window_over(self, lane: Lane, seconds: int) -> bool:
        """True when the lane's window has ended and none of its records is left."""
        if lane.window is None:
            return False
        with self._lock:
            head = lane.queue[0] if lane.queue else None
        if head is not None:
            return windows.window_of(head.created, seconds) != lane.window
        return time.time() >= lane.window + seconds

    def _final_invoke(self, lane: Lane, config: dict[str, Any], seconds: int) -> bool:
        """The window's last invocation: no records, the final state; retried until it works."""
        assert lane.window is not None
        stream = self.store.get(config["EventSourceArn"])
        event: dict[str, Any] = {"Records": []}
        event.update(
            windows.event_fields(
                lane.window,
                seconds,
                lane.state,
                stream.shard_id if stream else "",
                config["EventSourceArn"],
                True,
            )
        )
        result = self._invoke(lane, config, json.dumps(event).encode(), None)
        if result is None:
            return True
        if result.function_error or windows.returned_state(result.body) is None:
            self.on_result("PROBLEM: Function call failed")
            lane.retry_at = time.monotonic() + self.retry_seconds
            return True
        self.on_result("OK")
        lane.window, lane.state = None, {}
        return True

    def _batch(self, lane: Lane, config: dict[str, Any]) -> list[StreamRecord]:
        """The next batch of the lane, or [] while the batching window is still open."""
        with self._lock:
            if not lane.queue:
                return []
            size = lane.splits[0] if lane.splits else config["BatchSize"]
            window = config["MaximumBatchingWindowInSeconds"]
            fresh = not lane.splits and lane.attempts == 0
            started = lane.waiting_since
            opened = fresh and window and started is not None
            if opened and len(lane.queue) < size and time.monotonic() - started < window:
                return []
            batch: list[StreamRecord] = []
            total = 20
            seconds = config["TumblingWindowInSeconds"]
            first = windows.window_of(lane.queue[0].created, seconds) if seconds else None
            for record in lane.queue:
                if len(batch) >= size:
                    break
                if first is not None and windows.window_of(record.created, seconds) != first:
                    break  # a batch never spans two windows
                # Typed JSON takes a few times the item size, plus the record's envelope.
                total += 4 * record.size_bytes() + 600
                if batch and total > PAYLOAD_LIMIT:
                    break
                batch.append(record)
            return batch

    def _failure(
        self, result: Any, batch: list[StreamRecord], config: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        """Index of the first record to retry (None on success) and the function error."""
        if result.function_error:
            return 0, "Unhandled"
        if "ReportBatchItemFailures" not in config["FunctionResponseTypes"]:
            return None, None
        try:
            response = json.loads(result.body or b"null")
        except ValueError:
            return None, None  # a response that is not JSON is not a partial failure report
        if not isinstance(response, dict) or not response.get("batchItemFailures"):
            return None, None
        failures = response["batchItemFailures"]
        positions = {r.sequence_number: i for i, r in enumerate(batch)}
        found: list[int] = []
        for failure in failures if isinstance(failures, list) else [None]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in positions:  # "", null, a wrong key: the whole batch failed
                return 0, None
            found.append(positions[identifier])
        return min(found), None

    def _failed(
        self,
        lane: Lane,
        batch: list[StreamRecord],
        failed_from: int,
        function_error: str | None,
        config: dict[str, Any],
    ) -> None:
        """Checkpoint before the failure, then bisect, retry or discard the rest."""
        if failed_from:
            self._done(lane, failed_from, finished_batch=False)
        rest = batch[failed_from:]
        bisect = config["BisectBatchOnFunctionError"]
        with self._lock:
            if bisect and failed_from == 0 and len(rest) > 1:  # split; not a retry
                half = len(rest) // 2
                lane.splits[:1] = [half, len(rest) - half]
                lane.attempts = 0
                return
            lane.splits[:1] = [len(rest)]
            if bisect and failed_from:  # split at the failed record; not a retry
                lane.attempts = 0
                return
        retries = config["MaximumRetryAttempts"]
        if retries != -1 and lane.attempts > retries:
            self._discard(lane, rest, "RetryAttemptsExhausted", function_error, config)
            return
        lane.retry_at = time.monotonic() + self.retry_seconds

    def _discard_old(self, lane: Lane, config: dict[str, Any]) -> None:
        """Records older than MaximumRecordAgeInSeconds leave the lane for the destination."""
        max_age = config["MaximumRecordAgeInSeconds"]
        if max_age == -1:
            return
        horizon = time.time() - max_age
        with self._lock:
            size = lane.splits[0] if lane.splits else config["BatchSize"]
            old = [r for r in list(lane.queue)[:size] if r.created < horizon]
        if old:
            self._discard(lane, old, "RecordAgeExceeded", "Unhandled", config)

    def _discard(
        self,
        lane: Lane,
        records: list[StreamRecord],
        condition: str,
        function_error: str | None,
        config: dict[str, Any],
    ) -> None:
        """Drop the records from the lane and send their invocation record on failure."""
        invoke_count = lane.attempts
        self._done(lane, len(records))
        destination = ((config["DestinationConfig"] or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        stream = self.store.get(config["EventSourceArn"])
        if not destination or stream is None:
            return
        record = destinations.invocation_record(
            function_arn=config["FunctionArn"],
            condition=condition,
            invoke_count=invoke_count,
            function_error=function_error,
            records=records,
            shard_id=stream.shard_id,
            stream_arn=stream.arn,
        )
        destinations.send(self.cloud.moto, destination, record)

    def _done(self, lane: Lane, count: int, finished_batch: bool = True) -> None:
        """Checkpoint past the first `count` records of the lane."""
        with self._lock:
            for _ in range(min(count, len(lane.queue))):
                lane.queue.popleft()
            if finished_batch:
                if lane.splits:
                    lane.splits[0] -= count
                    if lane.splits[0] <= 0:
                        lane.splits.pop(0)
                lane.attempts = 0
            elif lane.splits:
                lane.splits[0] -= count
            lane.waiting_since = time.monotonic() if lane.queue else None

    def _iterator_age(self, function_name: str, newest: StreamRecord) -> None:
        """AWS/Lambda IteratorAge: how old the batch's last record is when it is sent."""
        age_ms = max(0.0, (time.time() - newest.created) * 1000)
        self.cloud.publisher.record(
            "AWS/Lambda",
            "IteratorAge",
            round(age_ms, 1),
            {"FunctionName": function_name},
            "Milliseconds",
        )


def _sequence(record: StreamRecord) -> int:
    return record.sequence
