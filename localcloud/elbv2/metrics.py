"""AWS/ApplicationELB request metrics, batched off the request path.

A request thread only appends one tuple to a list. A background thread swaps the list about
once a second and writes the aggregated counts and response times to the local CloudWatch
metric store (one `put` per metric and dimension set, with Values/Counts).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .rules import arn_dimension

log = logging.getLogger("localcloud.elbv2")

NAMESPACE = "AWS/ApplicationELB"
FLUSH_SECONDS = 1.0
_ELB_CODES = (500, 502, 503, 504)

# (load balancer dimension, target group dimension or "", status, origin, seconds or None);
# origin: "target", "elb" (an error the load balancer generated), "redirect" or "fixed".
Sample = tuple[str, str, int, str, float | None]
MetricKey = tuple[str, tuple[tuple[str, str], ...]]
_ACTION_COUNTS = {"redirect": "HTTP_Redirect_Count", "fixed": "HTTP_Fixed_Response_Count"}


def aggregate(samples: list[Sample]) -> dict[MetricKey, int | list[float]]:
    """Per (metric name, dimensions): a count, or for TargetResponseTime a list of seconds."""
    counts: dict[MetricKey, int] = defaultdict(int)
    times: dict[MetricKey, list[float]] = defaultdict(list)
    for balancer, group, status, origin, seconds in samples:
        by_balancer = (("LoadBalancer", balancer),)
        scopes = [by_balancer]
        if group:
            scopes.append((("LoadBalancer", balancer), ("TargetGroup", group)))
        for dims in scopes:
            counts[("RequestCount", dims)] += 1
        if origin == "target":
            for dims in scopes:
                counts[(f"HTTPCode_Target_{status // 100}XX_Count", dims)] += 1
                if seconds is not None:
                    times[("TargetResponseTime", dims)].append(seconds)
            continue
        # The load balancer's own answers are counted per load balancer only.
        counts[(f"HTTPCode_ELB_{status // 100}XX_Count", by_balancer)] += 1
        if status in _ELB_CODES:
            counts[(f"HTTPCode_ELB_{status}_Count", by_balancer)] += 1
        if origin in _ACTION_COUNTS:
            counts[(_ACTION_COUNTS[origin], by_balancer)] += 1
    return {**counts, **times}


class RequestMetrics:
    """Collects one sample per request and flushes them to the metric store every second."""

    def __init__(self, store: Callable[[], Any]) -> None:
        self._store = store
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self, balancer: str, group: str, status: int, origin: str, seconds: float | None
    ) -> None:
        """Note one request (called on the request path: an append, nothing more)."""
        with self._lock:  # uncontended almost always; keeps a flush from losing a sample
            self._samples.append((balancer, group, status, origin, seconds))
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        """Start the flushing thread once."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="elb-metrics", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """Flush until stopped."""
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        """Write what has been collected since the last flush."""
        with self._lock:
            samples, self._samples = self._samples, []
        if not samples:
            return
        for (name, dims), value in aggregate(samples).items():
            self._put(name, dims, value)

    def _put(self, name: str, dims: tuple[tuple[str, str], ...], value: Any) -> None:
        """One metric into the store: a count, or response times in seconds."""
        try:
            store = self._store()
            if isinstance(value, list):
                store.put(NAMESPACE, name, values=value, dimensions=dict(dims), unit="Seconds")
            else:
                store.put(
                    NAMESPACE,
                    name,
                    values=[1.0],
                    counts=[value],
                    dimensions=dict(dims),
                    unit="Count",
                )
        except Exception:  # metrics must never break the load balancer
            log.exception("could not publish %s", name)

    def stop(self) -> None:
        """Flush once more and stop the thread."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        self.flush()

    def clear(self) -> None:
        """Drop unflushed samples (reset)."""
        with self._lock:
            self._samples = []


def publish_host_counts(
    store: Any, group_arn: str, balancers: Iterable[str], healthy: int, unhealthy: int
) -> None:
    """HealthyHostCount and UnHealthyHostCount of a target group, per load balancer."""
    for balancer in balancers:
        dimensions = {
            "LoadBalancer": arn_dimension(balancer),
            "TargetGroup": arn_dimension(group_arn),
        }
        store.put(NAMESPACE, "HealthyHostCount", healthy, dimensions=dimensions, unit="Count")
        store.put(NAMESPACE, "UnHealthyHostCount", unhealthy, dimensions=dimensions, unit="Count")
