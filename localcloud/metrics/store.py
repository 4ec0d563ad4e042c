"""The local cloud's CloudWatch metric store: series, buckets, statistics and percentiles.

A metric is (namespace, name, exact dimension set). Data are kept per metric in time order;
queries select [start, end) and aggregate per [start + k*period) and per unit. Percentiles use
the nearest-rank rule on raw samples weighted by their counts: pNN is the smallest value whose
cumulative weight reaches NN% of the total, so p50 of 1..100 is 50 and p99 is 99. The provider
in `localcloud/cloudwatch/` serves the AWS API on top of this; other providers call
`MetricStore.put` (or batch through `MetricPublisher`).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from ..protocols import as_datetime

# The order is AWS's, as its "must be a value in the set [ ... ]" messages list them.
_UNIT_NAMES = (
    "Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits"
    " Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second"
    " Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second"
    " Gigabits/Second Terabits/Second Count/Second None"
)
UNITS = tuple(_UNIT_NAMES.split())
BASIC_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
SHORT_PERIODS = (1, 5, 10, 20, 30)
# Memory bound: each series keeps its latest samples, a datum with Values counting one per value.
MAX_SAMPLES_PER_SERIES = 100_000
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d{1,10})?)")
_DAY = 86400.0

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class MetricId:
    """A metric: namespace, name and its dimensions sorted by name."""

    namespace: str
    name: str
    dimensions: Dimensions = ()


@dataclass(frozen=True, slots=True)
class Datum:
    """One stored data point (a value, a Values/Counts set or a statistic set)."""

    timestamp: float
    unit: str
    count: float
    total: float
    minimum: float
    maximum: float
    samples: tuple[tuple[float, float], ...] | None  # (value, weight); None: no raw values
    arrived: float = 0.0  # when it was stored, kept only under the AWS timing profile


@dataclass(slots=True)
class Bucket:
    """The data of one period (and one unit), aggregated."""

    timestamp: float
    unit: str
    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    samples: list[tuple[float, float]] | None = field(default_factory=list)

    def add(self, datum: Datum) -> None:
        """Fold one datum into the bucket."""
        self.count += datum.count
        self.total += datum.total
        self.minimum = min(self.minimum, datum.minimum)
        self.maximum = max(self.maximum, datum.maximum)
        if self.samples is not None:
            if datum.samples is None:
                self.samples = None  # one opaque statistic set spoils the bucket's percentiles
            else:
                self.samples.extend(datum.samples)

    def statistic(self, stat: str) -> float | None:
        """SampleCount, Average, Sum, Minimum, Maximum or pNN; None when unavailable."""
        if stat == "SampleCount":
            return self.count
        if stat == "Sum":
            return self.total
        if stat == "Average":
            return self.total / self.count if self.count else None
        if stat == "Minimum":
            return self.minimum
        if stat == "Maximum":
            return self.maximum
        if not self.samples or any(value < 0 for value, _ in self.samples):
            return None  # AWS: no percentiles without raw values or with negative values
        return percentile(self.samples, stat[1:])


def percentile(samples: Iterable[tuple[float, float]], p: str | float) -> float:
    """Nearest rank: the smallest value whose cumulative weight reaches p% of the total weight."""
    ordered = sorted(samples)
    # Fractions of the decimal text keep p99.9 * N exact (float 99.9 * 1000 is 99900.00000000001).
    threshold = Fraction(str(p)) * Fraction(sum(w for _, w in ordered)) / 100
    cumulative = 0.0
    for value, weight in ordered:
        cumulative += weight
        if cumulative >= threshold:
            return value
    return ordered[-1][0]


def make_datum(
    timestamp: float,
    unit: str = "None",
    value: float | None = None,
    values: Sequence[float] | None = None,
    counts: Sequence[float] | None = None,
    statistic_values: Mapping[str, float] | None = None,
) -> Datum | None:
    """Build a datum from exactly one of value, values(+counts), statistic_values."""
    if sum(x is not None for x in (value, values, statistic_values)) != 1:
        raise ValueError("give exactly one of value, values or statistic_values")
    if statistic_values is not None:
        n, total = float(statistic_values["SampleCount"]), float(statistic_values["Sum"])
        low, high = float(statistic_values["Minimum"]), float(statistic_values["Maximum"])
        raw = ((low, n),) if low == high else ((total, 1.0),) if n == 1 else None
        return Datum(timestamp, unit, n, total, low, high, raw)
    if value is not None:
        return Datum(
            timestamp, unit, 1.0, float(value), float(value), float(value), ((float(value), 1.0),)
        )
    weights = [1.0] * len(values) if counts is None else counts
    if len(weights) != len(values):
        raise ValueError("values and counts differ in length")
    pairs = tuple((float(v), float(c)) for v, c in zip(values, weights, strict=True) if c > 0)
    if not pairs:
        return None  # nothing was observed
    return Datum(
        timestamp,
        unit,
        sum(c for _, c in pairs),
        sum(v * c for v, c in pairs),
        min(v for v, _ in pairs),
        max(v for v, _ in pairs),
        pairs,
    )


def dimensions_key(
    dimensions: Mapping[str, str] | Iterable[Mapping[str, str]] | None,
) -> Dimensions:
    """Dimensions as a sorted tuple, from a mapping or from AWS's [{Name, Value}] list."""
    if not dimensions:
        return ()
    if isinstance(dimensions, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in dimensions.items()))
    return tuple(sorted((d["Name"], d["Value"]) for d in dimensions))


class MetricStore:
    """Thread-safe metric series with CloudWatch's matching, bucketing and statistics."""

    def __init__(
        self, clock: Callable[[], float] = time.time, max_per_series: int = MAX_SAMPLES_PER_SERIES
    ):
        self.clock = clock
        self._max = max_per_series
        self._lock = threading.Lock()
        self._data: dict[MetricId, list[Datum]] = {}
        self._sizes: dict[MetricId, int] = {}  # samples held per series
        # Under the AWS timing profile data are readable only this long after they arrive.
        self.ingestion_delay = 0.0
        self._last_put: dict[MetricId, float] = {}

    def put(
        self,
        namespace: str,
        metric_name: str,
        value: float | None = None,
        *,
        values: Sequence[float] | None = None,
        counts: Sequence[float] | None = None,
        statistic_values: Mapping[str, float] | None = None,
        dimensions: Mapping[str, str] | None = None,
        unit: str = "None",
        timestamp: datetime | float | None = None,
        storage_resolution: int = 60,
    ) -> None:
        """Record one datum: the fast path for providers publishing AWS/* metrics."""
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}")
        when = self.clock() if timestamp is None else as_datetime(timestamp).timestamp()
        datum = make_datum(
            stored_time(when, storage_resolution), unit, value, values, counts, statistic_values
        )
        if datum is not None:
            self.insert([(MetricId(namespace, metric_name, dimensions_key(dimensions)), datum)])

    def insert(self, items: Iterable[tuple[MetricId, Datum]]) -> None:
        """Add data in one locked step (a PutMetricData call is all or nothing)."""
        now = self.clock()
        with self._lock:
            for metric, datum in items:
                if self.ingestion_delay:
                    datum = dataclasses.replace(datum, arrived=now)
                series = self._data.setdefault(metric, [])
                if not series or series[-1].timestamp <= datum.timestamp:
                    series.append(datum)  # the usual case: data arrives in time order
                else:
                    bisect.insort(series, datum, key=_timestamp_of)
                size = self._sizes.get(metric, 0) + _size(datum)
                drop = 0
                while size > self._max and drop < len(series) - 1:
                    size -= _size(series[drop])  # the oldest go first
                    drop += 1
                del series[:drop]
                self._sizes[metric] = size
                self._last_put[metric] = now

    def reset(self) -> None:
        """Forget every series."""
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._last_put.clear()

    def counts(self) -> tuple[int, int]:
        """(number of series, number of stored data)."""
        with self._lock:
            return len(self._data), sum(len(s) for s in self._data.values())

    def list_metrics(
        self,
        namespace: str | None = None,
        metric_name: str | None = None,
        dimension_filters: Iterable[Mapping[str, str]] = (),
        active_since: float | None = None,
    ) -> list[MetricId]:
        """Metrics matching the filters; a filter dimension without Value matches any value."""
        filters = [(f["Name"], f.get("Value")) for f in dimension_filters]
        with self._lock:
            found = [
                metric
                for metric, last in self._last_put.items()
                if (namespace is None or metric.namespace == namespace)
                and (metric_name is None or metric.name == metric_name)
                and (active_since is None or last >= active_since)
                and all(_has_dimension(metric.dimensions, n, v) for n, v in filters)
            ]
        return sorted(found, key=lambda m: (m.namespace, m.name, m.dimensions))

    def round_start(self, start: float, period: int) -> float:
        """StartTime rounded down the way CloudWatch documents it."""
        if period < 60:
            step = period
        else:
            age = self.clock() - start
            step = 3600 if age > 63 * _DAY else 300 if age > 15 * _DAY else 60
        return math.floor(start / step) * step

    def buckets(
        self, metric: MetricId, start: float, end: float, period: int, unit: str | None = None
    ) -> list[Bucket]:
        """Aggregates per [start + k*period) and unit, in time order; start should be rounded."""
        with self._lock:
            series = self._data.get(metric, [])
            low = bisect.bisect_left(series, start, key=_timestamp_of)
            high = bisect.bisect_left(series, end, key=_timestamp_of)
            selected = series[low:high]  # data are immutable: aggregate outside the lock
        if self.ingestion_delay:
            latest = self.clock() - self.ingestion_delay
            selected = [datum for datum in selected if datum.arrived <= latest]
        found: dict[tuple[float, str], Bucket] = {}
        for datum in selected:
            if unit is None or datum.unit == unit:
                slot = start + ((datum.timestamp - start) // period) * period
                bucket = found.get((slot, datum.unit))
                if bucket is None:
                    bucket = found[(slot, datum.unit)] = Bucket(slot, datum.unit)
                bucket.add(datum)
        return sorted(found.values(), key=lambda b: (b.timestamp, b.unit))


def _size(datum: Datum) -> int:
    """Samples a datum holds: one per raw value, one for a statistic set."""
    return len(datum.samples) if datum.samples else 1


def _timestamp_of(datum: Datum) -> float:
    """Sort key of stored data."""
    return datum.timestamp


def _has_dimension(dimensions: Dimensions, name: str, value: str | None) -> bool:
    """True when the metric has this dimension (with this value, if one is given)."""
    return any(n == name and (value is None or v == value) for n, v in dimensions)


def stored_time(timestamp: float, storage_resolution: int) -> float:
    """Standard-resolution data is kept on the minute, high-resolution to the second."""
    step = 1 if storage_resolution == 1 else 60
    return math.floor(timestamp / step) * step


def valid_period(period: int) -> bool:
    """1, 5, 10, 20, 30, or a multiple of 60."""
    return period in SHORT_PERIODS or (period > 0 and period % 60 == 0)


def valid_statistic(stat: str) -> bool:
    """A basic statistic or a percentile between p0 and p100."""
    if stat in BASIC_STATISTICS:
        return True
    match = _PERCENTILE.fullmatch(stat)
    return bool(match) and float(match.group(1)) <= 100
