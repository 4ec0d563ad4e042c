"""CloudWatch metrics for notebooks: put custom metrics, read series as DataFrames, chart them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .costs import Price
from .lab import Lab
from .report import Table
from .waiting import wait_for

_MAX_VALUES_PER_DATUM = 150  # PutMetricData's limit for Values/Counts


@dataclass(frozen=True)
class Metric:
    """A metric series and the statistic to read from it."""

    namespace: str
    name: str
    stat: str = "Average"
    dimensions: Mapping[str, str] = field(default_factory=dict)
    label: str | None = None

    def query(self, query_id: str, period: int) -> dict[str, Any]:
        """This metric as one GetMetricData query."""
        return {
            "Id": query_id,
            "Label": self.label or f"{self.name} {self.stat}",
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
                },
                "Period": period,
                "Stat": self.stat,
            },
        }


def put_values(
    lab: Lab,
    namespace: str,
    name: str,
    values: Sequence[float],
    *,
    dimensions: Mapping[str, str] | None = None,
    unit: str = "None",
    timestamp: dt.datetime | None = None,
    storage_resolution: int = 60,
) -> None:
    """Publish raw values (so percentiles work), in as few PutMetricData calls as allowed.

    storage_resolution=1 makes a high-resolution metric that can be read per second.
    """
    client = lab.client("cloudwatch")
    when = timestamp or dt.datetime.now(dt.UTC)
    dims = [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()]
    for start in range(0, len(values), _MAX_VALUES_PER_DATUM):
        chunk = [float(v) for v in values[start : start + _MAX_VALUES_PER_DATUM]]
        client.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": dims,
                    "Values": chunk,
                    "Unit": unit,
                    "Timestamp": when,
                    "StorageResolution": storage_resolution,
                }
            ],
        )


def put_per_second(
    lab: Lab,
    namespace: str,
    name: str,
    frame: pd.DataFrame,
    *,
    time_column: str,
    value_column: str,
    dimensions: Mapping[str, str] | None = None,
    unit: str = "None",
) -> None:
    """Publish timed samples as a high-resolution metric, one PutMetricData per second."""
    seconds = frame[time_column].dt.floor("s")
    for second, group in frame.groupby(seconds):
        put_values(
            lab,
            namespace,
            name,
            group[value_column].tolist(),
            dimensions=dimensions,
            unit=unit,
            timestamp=second.to_pydatetime(),
            storage_resolution=1,
        )


def metrics_frame(
    lab: Lab,
    metrics: Sequence[Metric],
    *,
    minutes: int = 15,
    period: int = 60,
    end: dt.datetime | None = None,
) -> pd.DataFrame:
    """Read metrics with one GetMetricData call: a DataFrame, time index, one column per label.

    The window is the last `minutes` before `end`, but never earlier than the period in which
    this run connected (`helpers.connect`): an earlier run with the same RUN_ID wrote to the
    same series, and its points are not this run's.
    """
    end = end or dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(minutes=minutes)
    # The start of the period this run connected in; a window that ends before it is asked
    # for on purpose (a chart of an earlier burst) and is left as it is.
    connected = dt.datetime.fromtimestamp(lab.started_at // period * period, dt.UTC)
    if connected < end:
        start = max(start, connected)
    queries = [m.query(f"m{i}", period) for i, m in enumerate(metrics)]
    response = lab.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
    )
    columns = {
        # tz="UTC" also for a series with no data yet, so it joins the others' UTC index
        result["Label"]: pd.Series(
            result["Values"], index=pd.DatetimeIndex(result["Timestamps"], tz="UTC")
        )
        for result in response["MetricDataResults"]
    }
    frame = Table(columns).sort_index()  # displayed with counts as 37, not 37.0
    frame.index.name = "time (UTC)"
    return frame


def wait_for_metrics(
    lab: Lab,
    metrics: Sequence[Metric],
    *,
    since: dt.datetime,
    minutes: int = 15,
    period: int = 60,
    timeout: float = 300,
) -> pd.DataFrame:
    """`metrics_frame`, once every metric has data at or after `since` (its minute, for 60 s).

    CloudWatch shows data a minute or more after they were published (the local cloud's AWS
    timing profile does too): reading right after a put can find nothing.
    """
    floor = since.replace(second=0, microsecond=0) if period >= 60 else since

    def arrived() -> tuple[pd.DataFrame] | None:  # a tuple: a frame has no truth value
        frame = metrics_frame(lab, metrics, minutes=minutes, period=period)
        recent = frame[frame.index >= floor] if len(frame) else frame
        labels = [m.label or f"{m.name} {m.stat}" for m in metrics]
        complete = all(label in recent and recent[label].notna().any() for label in labels)
        return (frame,) if complete else None

    (frame,) = wait_for(
        arrived,
        what="metrics to arrive in CloudWatch",
        timeout=timeout,
        estimate=90 if lab.backend == "aws" else 2,
        interval=10 if lab.backend == "aws" else 0.5,
    )
    return frame


# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "cloudwatch_metric_month": Price(0.30, "metric-month", "custom metrics, prorated hourly"),
}
