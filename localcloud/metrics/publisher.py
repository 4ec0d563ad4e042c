"""One batched publisher of AWS/* metrics, for the providers that measure every request.

A request thread only appends a sample; a background thread takes the samples about once a
second, groups them by metric, dimensions, unit and second, and writes each group to the
metric store as one datum with Values and Counts (so statistics and percentiles see every
sample, as they would on AWS).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping

from .store import MetricStore

log = logging.getLogger("localcloud.cloudwatch")

FLUSH_SECONDS = 1.0
Dimensions = tuple[tuple[str, str], ...]
# (namespace, metric name, dimensions, unit, whole second of the sample)
_Key = tuple[str, str, Dimensions, str, int]


class MetricPublisher:
    """Collects samples on the request path and flushes them to the store every second."""

    def __init__(self, store: MetricStore, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.store = store
        self._flush_seconds = flush_seconds
        self._samples: list[tuple[_Key, float]] = []
        self._lock = threading.Lock()
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
        """Note one sample (an append under an uncontended lock, nothing more)."""
        when = int(time.time() if timestamp is None else timestamp)
        key = (namespace, name, tuple(sorted(dimensions.items())), unit, when)
        with self._lock:
            self._samples.append((key, value))
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Write what has been collected since the last flush."""
        with self._lock:
            samples, self._samples = self._samples, []
        grouped: dict[_Key, Counter[float]] = defaultdict(Counter)
        for key, value in samples:
            grouped[key][value] += 1
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
            except Exception:  # metrics must never break the service that measures them
                log.exception("could not publish %s %s", namespace, name)

    def clear(self) -> None:
        """Drop unflushed samples (the local cloud's reset)."""
        with self._lock:
            self._samples = []

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
