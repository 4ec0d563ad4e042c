"""The batched metric publisher: notes on the request path, data points at flush time."""

from __future__ import annotations

from localcloud.metrics import MetricPublisher, MetricStore
from localcloud.metrics.store import MetricId, dimensions_key


def _series(store: MetricStore, name: str, dimensions: dict[str, str]) -> list:
    """The buckets of one metric in the minute the test writes to."""
    metric = MetricId("Test", name, dimensions_key(dimensions))
    return store.buckets(metric, 999_960, 1_000_020, 60)


def test_flush_groups_equal_samples_and_survives_a_bad_note():
    store = MetricStore()
    publisher = MetricPublisher(store, flush_seconds=3600)  # flushed by hand below
    dims = {"Api": "a"}

    def per_request(status: int, ms: float) -> list:
        return [("Count", dims, 1.0, "Count"), ("Latency", dims, ms, "Milliseconds")]

    def broken() -> list:
        raise RuntimeError("a bug in one expander")

    for status, ms in ((200, 5.0), (200, 5.0), (500, 9.0)):
        publisher.record_with("Test", per_request, (status, ms), timestamp=1_000_000.0)
    publisher.record_with("Test", broken, (), timestamp=1_000_000.0)
    publisher.record("Test", "Count", 1.0, dims, "Count", timestamp=1_000_000.4)
    assert _series(store, "Count", dims) == []  # nothing reaches the store before a flush
    publisher.flush()
    (count,) = _series(store, "Count", dims)
    assert (count.statistic("SampleCount"), count.statistic("Sum")) == (4.0, 4.0)
    (latency,) = _series(store, "Latency", dims)
    assert latency.statistic("SampleCount") == 3.0
    assert (latency.statistic("Minimum"), latency.statistic("Maximum")) == (5.0, 9.0)
    assert latency.statistic("p50") == 5.0
    publisher.close()
