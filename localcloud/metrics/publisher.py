"""One batched publisher of AWS/* metrics, for the providers that measure every request.

A request thread only appends what it measured; a background thread takes those notes about
once a second, turns each into its data points, groups them by metric, dimensions, unit and
second, and writes each group to the metric store as one datum with Values and Counts (so
statistics and percentiles see every sample, as they would on AWS).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .store import MetricStore

log = logging.getLogger("localcloud.cloudwatch")

FLUSH_SECONDS = 1.0
Dimensions = tuple[tuple[str, str], ...]
DataPoint = tuple[str, Mapping[str, str], float, str]  # metric name, dimensions, value, unit
Expand = Callable[..., Iterable[DataPoint]]
# (namespace, metric name, dimensions, unit, whole second of the sample)
_Key = tuple[str, str, Dimensions, str, int]
_Note = tuple[str, Expand, tuple[Any, ...], int]  # namespace, expand, its arguments, second


def _one(name: str, dimensions: Mapping[str, str], value: float, unit: str) -> list[DataPoint]:
    return [(name, dimensions, value, unit)]


class MetricPublisher:
    """Collects samples on the request path and flushes them to the store every second."""

    def __init__(self, store: MetricStore, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.store = store
        self._flush_seconds = flush_seconds
        self._notes: list[_Note] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # a reader's flush waits for the one in progress
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self,
        namespace: str,
        name: str,
        value: float,
        dimensions: Mapping[str, str],
        unit: str,
        timestamp: float | None = None,
    ) -> None:
        """Note one sample."""
        self.record_with(namespace, _one, (name, dimensions, value, unit), timestamp)

    def record_with(
        self,
        namespace: str,
        expand: Expand,
        args: tuple[Any, ...],
        timestamp: float | None = None,
    ) -> None:
        """Note what `expand(*args)` will give: it runs on the flush thread, not the caller's."""
        when = int(time.time() if timestamp is None else timestamp)
        with self._lock:  # uncontended almost always; keeps a flush from losing a note
            self._notes.append((namespace, expand, args, when))
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Write what has been noted since the last flush."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            notes, self._notes = self._notes, []
        grouped: dict[_Key, Counter[float]] = defaultdict(Counter)
        for namespace, expand, args, second in notes:
            try:
                for name, dimensions, value, unit in expand(*args):
                    key = (namespace, name, tuple(sorted(dimensions.items())), unit, second)
                    grouped[key][value] += 1
            except Exception:  # metrics must never break the service that measures them
                log.exception("could not expand %s data", namespace)
        for (namespace, name, dims, unit, second), values in grouped.items():
            try:
                self.store.put(
                    namespace,
                    name,
                    values=list(values),
                    counts=list(values.values()),
                    dimensions=dict(dims),
                    unit=unit,
                    timestamp=float(second),
                )
            except Exception:
                log.exception("could not publish %s %s", namespace, name)

    def clear(self) -> None:
        """Drop unflushed notes (the local cloud's reset)."""
        with self._lock:
            self._notes = []

    def close(self) -> None:
        """Flush once more and stop the thread."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()
