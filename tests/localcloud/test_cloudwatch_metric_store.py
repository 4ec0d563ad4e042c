"""The CloudWatch metric store and provider, checked against hand-computed AWS semantics.

Percentiles follow the documented nearest-rank rule: pNN is the smallest value whose cumulative
weight reaches NN% of all weight, i.e. the value of rank ceil(NN/100 * N) among N samples.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import botocore.model
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse

from localcloud import protocols
from localcloud.cloudwatch import CloudWatchProvider
from localcloud.context import CloudContext
from localcloud.metrics.publisher import MetricPublisher
from localcloud.metrics.store import MetricId, MetricStore, percentile
from localcloud.protocols import AwsRequest, ServiceError
from localcloud.registry import RequestContext

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CTX = RequestContext(region="us-east-1", account_id="123456789012", request_id="r-1")


def provider_on(store: MetricStore) -> CloudWatchProvider:
    """The provider on a stand-in context that holds only the metric store and its publisher."""
    context = SimpleNamespace(metrics=store, publisher=MetricPublisher(store))
    return CloudWatchProvider(cast(CloudContext, context))


class Clock:
    """A settable clock, so 'now' and the rounding rules that depend on it are fixed."""

    def __init__(self, when: datetime = NOW) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cw(clock: Clock) -> CloudWatchProvider:
    return provider_on(MetricStore(clock=clock))


def at(seconds: float) -> datetime:
    """NOW plus some seconds."""
    return NOW + timedelta(seconds=seconds)


def stats(
    cw: CloudWatchProvider, namespace: str = "Course/Lab", name: str = "Latency", **kw: Any
) -> list[dict]:
    """Datapoints of GetMetricStatistics over the ten minutes around NOW."""
    params = {
        "Namespace": namespace,
        "MetricName": name,
        "StartTime": at(-300),
        "EndTime": at(300),
        "Period": 60,
        "Statistics": ["SampleCount", "Average", "Sum", "Minimum", "Maximum"],
        **kw,
    }
    return cw.GetMetricStatistics(params, CTX)["Datapoints"]


def metric_data(cw: CloudWatchProvider, *queries: dict, **kw: Any) -> dict:
    """GetMetricData over the ten minutes around NOW."""
    params = {"MetricDataQueries": list(queries), "StartTime": at(-300), "EndTime": at(300), **kw}
    return cw.GetMetricData(params, CTX)


def stat_query(
    qid: str,
    stat: str,
    namespace: str = "Course/Lab",
    name: str = "Latency",
    dims: list | None = None,
    period: int = 60,
    **extra: Any,
) -> dict:
    """One MetricStat query."""
    metric = {"Namespace": namespace, "MetricName": name}
    if dims is not None:
        metric["Dimensions"] = dims
    return {"Id": qid, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat, **extra}}


def put(cw: CloudWatchProvider, *data: dict, namespace: str = "Course/Lab") -> None:
    cw.PutMetricData({"Namespace": namespace, "MetricData": list(data)}, CTX)


def error_of(call: Any, *args: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, CTX)
    return caught.value


# ---------------------------------------------------------------------------- aggregation


def test_one_to_a_hundred_aggregates_like_aws(cw: CloudWatchProvider) -> None:
    put(
        cw,
        *({"MetricName": "Latency", "Value": float(v), "Timestamp": at(5)} for v in range(1, 101)),
    )
    [point] = stats(cw, ExtendedStatistics=None)
    assert point["Timestamp"] == NOW
    assert (point["SampleCount"], point["Sum"], point["Average"]) == (100, 5050, 50.5)
    assert (point["Minimum"], point["Maximum"], point["Unit"]) == (1, 100, "None")
    [point] = stats(
        cw, Statistics=None, ExtendedStatistics=["p50", "p99", "p99.5", "p0", "p100", "p25.5"]
    )
    # Rank ceil(p/100 * 100): p50 -> 50th value, p99 -> 99th, p99.5 -> 100th, p25.5 -> 26th.
    assert point["ExtendedStatistics"] == {
        "p50": 50,
        "p99": 99,
        "p99.5": 100,
        "p0": 1,
        "p100": 100,
        "p25.5": 26,
    }


def test_percentile_rule_is_nearest_rank_and_exact() -> None:
    ten = [(float(v), 1.0) for v in range(1, 11)]
    assert percentile(ten, "90") == 9  # rank 9
    assert percentile(ten, "90.1") == 10  # rank ceil(9.01) = 10
    assert percentile(ten, "7") == 1  # rank ceil(0.7) = 1; float 0.07 * 10 would round up wrongly
    thousand = [(float(v), 1.0) for v in range(1, 1001)]
    assert percentile(thousand, "99.9") == 999  # 99.9 * 1000 in floats is 99900.00000000001


def test_values_and_counts_weight_the_samples(cw: CloudWatchProvider) -> None:
    put(
        cw,
        {
            "MetricName": "Latency",
            "Values": [30.0, 10.0, 20.0],
            "Counts": [2.0, 1.0, 1.0],
            "Timestamp": NOW,
        },
    )
    [point] = stats(cw)
    assert (point["SampleCount"], point["Sum"], point["Average"]) == (4, 90, 22.5)
    assert (point["Minimum"], point["Maximum"]) == (10, 30)
    # Sorted weights 10:1, 20:1, 30:2 -> cumulative 1, 2, 4 of 4.
    [point] = stats(cw, Statistics=None, ExtendedStatistics=["p25", "p50", "p51", "p75"])
    assert point["ExtendedStatistics"] == {"p25": 10, "p50": 20, "p51": 30, "p75": 30}


def test_values_without_counts_count_once_each(cw: CloudWatchProvider) -> None:
    put(cw, {"MetricName": "Latency", "Values": [1.0, 2.0, 6.0], "Timestamp": NOW})
    [point] = stats(cw)
    assert (point["SampleCount"], point["Sum"], point["Average"]) == (3, 9, 3)


def test_statistic_sets_aggregate_but_have_no_percentiles(cw: CloudWatchProvider) -> None:
    batch = {"SampleCount": 4.0, "Sum": 20.0, "Minimum": 2.0, "Maximum": 8.0}
    put(
        cw,
        {"MetricName": "Latency", "StatisticValues": batch, "Timestamp": NOW},
        {"MetricName": "Latency", "Value": 10.0, "Timestamp": at(1)},
    )
    [point] = stats(cw)
    assert (point["SampleCount"], point["Sum"], point["Average"]) == (5, 30, 6)
    assert (point["Minimum"], point["Maximum"]) == (2, 10)
    [point] = stats(cw, Statistics=None, ExtendedStatistics=["p50"])
    assert point["ExtendedStatistics"] == {}  # the opaque set spoils the bucket's percentiles
    # GetMetricData has no value to show for that bucket at all.
    result = metric_data(cw, stat_query("p", "p50"), stat_query("n", "SampleCount"))
    assert [r["Values"] for r in result["MetricDataResults"]] == [[], [5]]


def test_statistic_sets_with_equal_bounds_are_raw_samples(cw: CloudWatchProvider) -> None:
    same = {"SampleCount": 3.0, "Sum": 15.0, "Minimum": 5.0, "Maximum": 5.0}
    put(
        cw,
        {"MetricName": "Latency", "StatisticValues": same, "Timestamp": NOW},
        {"MetricName": "Latency", "Value": 1.0, "Timestamp": NOW},
    )
    [point] = stats(cw, Statistics=None, ExtendedStatistics=["p25", "p50"])
    assert point["ExtendedStatistics"] == {"p25": 1, "p50": 5}  # weights 1:1, 5:3


def test_negative_values_have_no_percentiles(cw: CloudWatchProvider) -> None:
    put(cw, {"MetricName": "Latency", "Values": [-1.0, 4.0], "Timestamp": NOW})
    [point] = stats(cw, Statistics=None, ExtendedStatistics=["p50"])
    assert point["ExtendedStatistics"] == {}


# ---------------------------------------------------------------------------- identity


def test_namespaces_never_mix(cw: CloudWatchProvider) -> None:
    dims = [{"Name": "FunctionName", "Value": "fn"}]
    put(
        cw,
        *(
            {"MetricName": "Latency", "Value": float(v), "Dimensions": dims, "Timestamp": NOW}
            for v in range(1, 101)
        ),
    )
    put(
        cw,
        {"MetricName": "Latency", "Value": 10000.0, "Dimensions": dims, "Timestamp": NOW},
        namespace="Other/NS",
    )
    result = metric_data(
        cw,
        stat_query("lab", "Sum", dims=dims),
        stat_query("other", "Sum", namespace="Other/NS", dims=dims),
        stat_query("labmax", "Maximum", dims=dims),
    )
    values = {r["Id"]: r["Values"] for r in result["MetricDataResults"]}
    assert values == {"lab": [5050], "other": [10000], "labmax": [100]}


def test_queries_match_the_exact_dimension_set(cw: CloudWatchProvider) -> None:
    one = [{"Name": "FunctionName", "Value": "fn"}]
    two = [{"Name": "Resource", "Value": "fn:1"}, {"Name": "FunctionName", "Value": "fn"}]
    put(
        cw,
        {"MetricName": "Latency", "Value": 1.0, "Dimensions": one, "Timestamp": NOW},
        {"MetricName": "Latency", "Value": 20.0, "Dimensions": two, "Timestamp": NOW},
        {"MetricName": "Latency", "Value": 300.0, "Timestamp": NOW},
    )
    assert [p["Sum"] for p in stats(cw, Dimensions=one)] == [1]
    assert [p["Sum"] for p in stats(cw, Dimensions=list(reversed(two)))] == [
        20
    ]  # order is irrelevant
    assert [p["Sum"] for p in stats(cw)] == [300]  # no dimensions: only dimensionless data
    assert stats(cw, Dimensions=[{"Name": "FunctionName", "Value": "other"}]) == []


def test_internal_publishers_may_use_aws_namespaces(cw: CloudWatchProvider) -> None:
    cw.store.put(
        "AWS/Lambda",
        "Duration",
        12.5,
        dimensions={"FunctionName": "f"},
        unit="Milliseconds",
        timestamp=NOW,
    )
    cw.store.put(
        "AWS/Lambda",
        "Duration",
        values=[1.0, 3.0],
        counts=[1, 3],
        dimensions={"FunctionName": "f"},
        unit="Milliseconds",
        timestamp=NOW.timestamp(),
    )
    [point] = stats(
        cw,
        namespace="AWS/Lambda",
        name="Duration",
        Dimensions=[{"Name": "FunctionName", "Value": "f"}],
    )
    assert (point["SampleCount"], point["Sum"], point["Unit"]) == (5, 22.5, "Milliseconds")
    with pytest.raises(ValueError):
        cw.store.put("AWS/Lambda", "Duration", 1.0, values=[2.0])


# ---------------------------------------------------------------------------- time


def test_start_time_is_rounded_and_buckets_sit_on_the_minute(cw: CloudWatchProvider) -> None:
    for offset, value in ((-50, 1.0), (10, 2.0), (50, 3.0), (80, 4.0)):
        put(
            cw,
            {
                "MetricName": "Latency",
                "Value": value,
                "Timestamp": at(offset),
                "StorageResolution": 1,
            },
        )
    result = cw.GetMetricStatistics(
        {
            "Namespace": "Course/Lab",
            "MetricName": "Latency",
            "StartTime": at(-30),
            "EndTime": at(120),
            "Period": 60,
            "Statistics": ["Sum"],
        },
        CTX,
    )
    # StartTime 11:59:30 rounds down to 11:59:00, so the 11:59:10 point (-50 s) is included.
    assert [(p["Timestamp"], p["Sum"]) for p in result["Datapoints"]] == [
        (at(-60), 1),
        (NOW, 5),
        (at(60), 4),
    ]


def test_short_periods_round_start_to_the_period(cw: CloudWatchProvider) -> None:
    for offset in (3, 7, 12, 14):
        put(
            cw,
            {
                "MetricName": "Latency",
                "Value": float(offset),
                "Timestamp": at(offset),
                "StorageResolution": 1,
            },
        )
    result = metric_data(
        cw,
        stat_query("s", "Sum", period=5),
        StartTime=at(7),
        EndTime=at(20),
        ScanBy="TimestampAscending",
    )
    [series] = result["MetricDataResults"]
    assert series["Timestamps"] == [at(5), at(10)]  # 12:00:07 rounds down to 12:00:05
    assert series["Values"] == [7, 26]


def test_standard_resolution_data_is_stored_on_the_minute(cw: CloudWatchProvider) -> None:
    put(
        cw,
        {"MetricName": "Latency", "Value": 1.0, "Timestamp": at(10)},
        {"MetricName": "Latency", "Value": 2.0, "Timestamp": at(50)},
    )
    result = metric_data(cw, stat_query("s", "SampleCount", period=1))
    assert result["MetricDataResults"][0]["Timestamps"] == [NOW]
    assert result["MetricDataResults"][0]["Values"] == [2]


def test_old_start_times_round_to_five_minutes_and_hours(clock: Clock) -> None:
    store = MetricStore(clock=clock)
    twenty_days_ago = NOW.timestamp() - 20 * 86400 + 7 * 60 + 34  # hh:07:34
    seventy_days_ago = NOW.timestamp() - 70 * 86400 + 7 * 60 + 34
    assert store.round_start(twenty_days_ago, 60) == twenty_days_ago - 2 * 60 - 34
    assert store.round_start(seventy_days_ago, 300) == seventy_days_ago - 7 * 60 - 34
    assert store.round_start(NOW.timestamp() + 34, 3600) == NOW.timestamp()


def test_scan_by_orders_the_datapoints(cw: CloudWatchProvider) -> None:
    put(
        cw,
        *(
            {"MetricName": "Latency", "Value": float(m), "Timestamp": at(60 * m)}
            for m in range(-2, 3)
        ),
    )
    newest_first = metric_data(cw, stat_query("s", "Sum"))["MetricDataResults"][0]
    assert newest_first["Values"] == [2, 1, 0, -1, -2]
    assert newest_first["Timestamps"] == [at(60 * m) for m in (2, 1, 0, -1, -2)]
    oldest_first = metric_data(cw, stat_query("s", "Sum"), ScanBy="TimestampAscending")
    assert oldest_first["MetricDataResults"][0]["Values"] == [-2, -1, 0, 1, 2]


def test_end_time_is_exclusive(cw: CloudWatchProvider) -> None:
    put(
        cw,
        {"MetricName": "Latency", "Value": 1.0, "Timestamp": NOW},
        {"MetricName": "Latency", "Value": 2.0, "Timestamp": at(60)},
    )
    result = metric_data(cw, stat_query("s", "Sum"), StartTime=NOW, EndTime=at(60))
    assert result["MetricDataResults"][0]["Values"] == [1]


def test_data_arriving_out_of_order_is_found(cw: CloudWatchProvider) -> None:
    for offset, value in ((120, 3.0), (0, 1.0), (60, 2.0), (-60, 0.5)):
        put(cw, {"MetricName": "Latency", "Value": value, "Timestamp": at(offset)})
    result = metric_data(cw, stat_query("s", "Sum"), StartTime=at(30), EndTime=at(90))
    assert result["MetricDataResults"][0]["Values"] == [2, 1]  # 12:00:30 rounds to 12:00:00
    result = metric_data(cw, stat_query("s", "Sum"), StartTime=at(60), EndTime=at(90))
    assert result["MetricDataResults"][0]["Values"] == [2]


def test_each_series_keeps_its_latest_samples_only(clock: Clock) -> None:
    cw = provider_on(MetricStore(clock=clock, max_per_series=10))
    for minute in range(5):  # 5 data of 4 values each: 20 samples, the oldest 12 must go
        values = [minute * 10 + n for n in range(1, 5)]
        put(cw, {"MetricName": "Latency", "Values": values, "Timestamp": at(minute * 60 - 240)})
    put(cw, {"MetricName": "Other", "Value": 1.0, "Timestamp": at(0)})
    points = sorted(stats(cw), key=lambda p: p["Timestamp"])
    assert [p["SampleCount"] for p in points] == [4, 4]  # a datum goes whole, oldest first
    assert [p["Minimum"] for p in points] == [31, 41]
    assert cw.store.counts() == (2, 3)  # the other series is untouched


def test_services_samples_are_readable_at_once(cw: CloudWatchProvider) -> None:
    cw.cloud.publisher.record("AWS/Lambda", "Duration", 2.5, {"FunctionName": "f"}, "Milliseconds")
    now = datetime.now(UTC)  # the publisher stamps samples with the real time
    window = {"StartTime": now - timedelta(hours=1), "EndTime": now + timedelta(hours=1)}
    dims = [{"Name": "FunctionName", "Value": "f"}]
    points = stats(cw, namespace="AWS/Lambda", name="Duration", Dimensions=dims, **window)
    assert [p["Maximum"] for p in points] == [2.5]  # flushed by the read, not a second later
    cw.cloud.publisher.close()


def test_max_datapoints_pages_with_next_token(cw: CloudWatchProvider) -> None:
    put(
        cw,
        *(
            {"MetricName": "Latency", "Value": float(m), "Timestamp": at(60 * m)}
            for m in range(-2, 3)
        ),
    )
    put(cw, {"MetricName": "Other", "Value": 9.0, "Timestamp": NOW})
    queries = [stat_query("a", "Sum"), stat_query("b", "Sum", name="Other")]
    seen: dict[str, list] = {"a": [], "b": []}
    token, pages = None, 0
    while True:
        extra = {"NextToken": token} if token else {}
        page = metric_data(cw, *queries, MaxDatapoints=2, ScanBy="TimestampAscending", **extra)
        pages += 1
        for result in page["MetricDataResults"]:
            seen[result["Id"]] += result["Values"]
            assert len(result["Values"]) <= 2
        token = page.get("NextToken")
        if token is None:
            assert page["MetricDataResults"][-1]["StatusCode"] == "Complete"
            break
        assert page["MetricDataResults"][-1]["StatusCode"] == "PartialData"
    assert seen == {"a": [-2, -1, 0, 1, 2], "b": [9]}
    assert pages == 3


# ---------------------------------------------------------------------------- units and labels


def test_units_split_statistics_and_pick_one_for_metric_data(cw: CloudWatchProvider) -> None:
    put(
        cw,
        {"MetricName": "Latency", "Value": 60000.0, "Unit": "Milliseconds", "Timestamp": NOW},
        {"MetricName": "Latency", "Value": 60.0, "Unit": "Seconds", "Timestamp": NOW},
        {"MetricName": "Latency", "Value": 5.0, "Unit": "Count", "Timestamp": NOW},
    )
    by_unit = {p["Unit"]: p["Sum"] for p in stats(cw)}
    assert by_unit == {"Milliseconds": 60000, "Seconds": 60, "Count": 5}
    assert [p["Sum"] for p in stats(cw, Unit="Seconds")] == [60]
    [result] = metric_data(cw, stat_query("m", "Sum"))["MetricDataResults"]
    assert result["Values"] == [5]  # 'Count' sorts first, as AWS picks it
    assert result["Messages"] == [
        {
            "Code": "MultipleUnits",
            "Value": "Multiple units returned: '[Count, Milliseconds, Seconds]'",
        }
    ]
    [result] = metric_data(cw, stat_query("m", "Sum", Unit="Milliseconds"))["MetricDataResults"]
    assert (result["Values"], "Messages" in result) == ([60000], False)


def test_default_labels_name_what_differs(cw: CloudWatchProvider) -> None:
    put(cw, {"MetricName": "Latency", "Value": 1.0, "Timestamp": NOW})
    result = metric_data(
        cw,
        stat_query("a", "Sum", period=60),
        stat_query("b", "Minimum", period=60),
        stat_query("c", "Sum", name="Other", period=300),
        {**stat_query("d", "Sum", name="Third"), "Label": "mine"},
        {**stat_query("hidden", "Sum", name="Fourth"), "ReturnData": False},
    )
    labels = {r["Id"]: r["Label"] for r in result["MetricDataResults"]}
    assert labels == {"a": "Latency Sum", "b": "Latency Minimum", "c": "Other", "d": "mine"}
    assert result["Messages"] == []
    assert all(r["StatusCode"] == "Complete" for r in result["MetricDataResults"])


# ---------------------------------------------------------------------------- ListMetrics


def test_list_metrics_deduplicates_and_filters(cw: CloudWatchProvider, clock: Clock) -> None:
    fn_a = [{"Name": "FunctionName", "Value": "a"}]
    fn_b_res = [{"Name": "FunctionName", "Value": "b"}, {"Name": "Resource", "Value": "b:1"}]
    for _ in range(3):
        put(
            cw,
            {"MetricName": "Plain", "Value": 1.0},
            {"MetricName": "Latency", "Value": 1.0, "Dimensions": fn_a},
        )
    put(cw, {"MetricName": "Latency", "Value": 1.0, "Dimensions": fn_b_res})
    put(cw, {"MetricName": "Plain", "Value": 1.0}, namespace="Other/NS")

    def listed(**params: Any) -> list[tuple]:
        metrics = cw.ListMetrics(params, CTX)["Metrics"]
        return [
            (m["Namespace"], m["MetricName"], tuple(d["Value"] for d in m["Dimensions"]))
            for m in metrics
        ]

    assert listed(Namespace="Course/Lab") == [
        ("Course/Lab", "Latency", ("a",)),
        ("Course/Lab", "Latency", ("b", "b:1")),
        ("Course/Lab", "Plain", ()),
    ]
    assert len(listed()) == 4
    assert listed(MetricName="Plain") == [("Course/Lab", "Plain", ()), ("Other/NS", "Plain", ())]
    assert listed(Dimensions=[{"Name": "FunctionName"}]) == [
        ("Course/Lab", "Latency", ("a",)),
        ("Course/Lab", "Latency", ("b", "b:1")),
    ]
    assert listed(Dimensions=[{"Name": "FunctionName", "Value": "b"}]) == [
        ("Course/Lab", "Latency", ("b", "b:1"))
    ]
    assert listed(Dimensions=[{"Name": "Resource"}, {"Name": "FunctionName", "Value": "a"}]) == []
    clock.now += 4 * 3600
    put(cw, {"MetricName": "Fresh", "Value": 1.0})
    assert listed(RecentlyActive="PT3H") == [("Course/Lab", "Fresh", ())]
    assert error_of(cw.ListMetrics, {"RecentlyActive": "PT1H"}).code == "InvalidParameterValue"


def test_list_metrics_pages_by_500(cw: CloudWatchProvider) -> None:
    for chunk in range(3):
        put(cw, *({"MetricName": f"m{chunk}-{i:04d}", "Value": 1.0} for i in range(400)))
    pages, token = [], None
    while True:
        page = cw.ListMetrics(
            {"Namespace": "Course/Lab", **({"NextToken": token} if token else {})}, CTX
        )
        pages.append([m["MetricName"] for m in page["Metrics"]])
        token = page.get("NextToken")
        if token is None:
            break
    assert [len(p) for p in pages] == [500, 500, 200]
    names = [name for page in pages for name in page]
    assert names == sorted(set(names))  # distinct, in a stable order across pages


# ---------------------------------------------------------------------------- errors


def test_put_metric_data_refuses_what_aws_refuses(cw: CloudWatchProvider, clock: Clock) -> None:
    def put_error(*data: dict, namespace: str = "Course/Lab") -> tuple[str, str]:
        error = error_of(cw.PutMetricData, {"Namespace": namespace, "MetricData": list(data)})
        return error.code, error.message

    both = {
        "MetricName": "m",
        "Value": 1.0,
        "StatisticValues": {"SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0},
    }
    assert put_error(both) == (
        "InvalidParameterCombination",
        "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues "
        "are mutually exclusive and you have specified both.",
    )
    code, message = put_error({"MetricName": "m", "Values": [1.0, 2.0], "Counts": [1.0]})
    assert code == "InvalidParameterValue" and "Values and MetricData.member.1.Counts" in message
    assert (
        put_error({"MetricName": "m", "Value": 1.0}, namespace="AWS/Lambda")[0]
        == "InvalidParameterValue"
    )
    dims = [{"Name": f"d{i}", "Value": "v"} for i in range(31)]
    assert put_error({"MetricName": "m", "Value": 1.0, "Dimensions": dims}) == (
        "InvalidParameterValue",
        "The collection MetricData.member.1.Dimensions must not have a size greater than 30.",
    )
    assert put_error({"MetricName": "m", "Value": 1.0, "Unit": "Furlongs"})[1].startswith(
        "The parameter MetricData.member.1.Unit must be a value in the set [ Seconds, Microseconds,"
    )
    assert (
        put_error({"MetricName": "m", "Value": 1.0, "StorageResolution": 5})[0]
        == "InvalidParameterValue"
    )
    assert put_error({"MetricName": "m", "Value": math.nan})[0] == "InvalidParameterValue"
    assert put_error({"MetricName": "m"})[0] == "InvalidParameterCombination"
    assert put_error({"MetricName": "m", "Values": [1.0] * 151})[0] == "InvalidParameterValue"
    # Every problem of the first kind is reported, one per line, as AWS does.
    old = {"MetricName": "m", "Value": 1.0, "Timestamp": at(-15 * 86400)}
    assert put_error(old, {"MetricName": "ok", "Value": 1.0}, old) == (
        "InvalidParameterValue",
        "The parameter MetricData.member.1.Timestamp must specify a time within the past two"
        " weeks.\nThe parameter MetricData.member.3.Timestamp must specify a time within the"
        " past two weeks.",
    )
    assert (
        put_error({"MetricName": "m", "Value": 1.0, "Timestamp": at(3 * 3600)})[0]
        == "InvalidParameterValue"
    )
    assert cw.store.counts() == (0, 0)  # nothing of a refused call is stored


def test_get_metric_statistics_errors(cw: CloudWatchProvider) -> None:
    base = {
        "Namespace": "Course/Lab",
        "MetricName": "m",
        "StartTime": NOW,
        "EndTime": at(600),
        "Period": 60,
    }
    missing = error_of(cw.GetMetricStatistics, base)
    assert (missing.code, missing.message) == (
        "InvalidParameterCombination",
        "Must specify either Statistics or ExtendedStatistics",
    )
    assert (
        error_of(
            cw.GetMetricStatistics, {**base, "Statistics": ["Sum"], "ExtendedStatistics": ["p9"]}
        ).code
        == "InvalidParameterCombination"
    )
    wrong = error_of(cw.GetMetricStatistics, {**base, "Statistics": ["p99"]})
    assert (
        wrong.message == "The parameter Statistics.member.1 must be a value in the set "
        "[ Minimum, Maximum, Average, SampleCount, Sum ]."
    )
    assert (
        error_of(cw.GetMetricStatistics, {**base, "ExtendedStatistics": ["p101"]}).code
        == "InvalidParameterValue"
    )
    assert (
        error_of(cw.GetMetricStatistics, {**base, "Statistics": ["Sum"], "Period": 45}).code
        == "InvalidParameterValue"
    )
    backwards = error_of(cw.GetMetricStatistics, {**base, "Statistics": ["Sum"], "EndTime": NOW})
    assert backwards.message == "The parameter StartTime must be less than the parameter EndTime."
    too_many = error_of(
        cw.GetMetricStatistics, {**base, "Statistics": ["Sum"], "Period": 1, "EndTime": at(86400)}
    )
    assert (too_many.code, too_many.message) == (
        "InvalidParameterCombination",
        "You have requested up to 86400 datapoints, which exceeds the limit of 1440. You may "
        "reduce the datapoints requested by increasing Period, or decreasing the time range.",
    )


def test_get_metric_data_errors(cw: CloudWatchProvider) -> None:
    def gmd_error(*queries: dict, **kw: Any) -> ServiceError:
        params = {"MetricDataQueries": list(queries), "StartTime": NOW, "EndTime": at(60), **kw}
        return error_of(cw.GetMetricData, params)

    math_error = gmd_error(stat_query("a", "Sum"), {"Id": "e", "Expression": "a * 2"})
    assert math_error.code == "ValidationError"
    assert (
        "MetricDataQueries.member.2.Expression" in math_error.message
        and "not supported by the local cloud" in math_error.message
    )
    assert (
        gmd_error(stat_query("a", "tm90")).message
        == "The value tm90 for parameter MetricDataQueries.member.1.MetricStat.Stat "
        "is not a valid statistic."
    )
    assert gmd_error(stat_query("a", "Sum"), stat_query("a", "Average")).code == "ValidationError"
    assert gmd_error(stat_query("A", "Sum")).code == "ValidationError"
    assert gmd_error(stat_query("a", "Sum", period=7)).code == "ValidationError"
    assert (
        gmd_error(stat_query("a", "Sum"), EndTime=NOW).message
        == "The parameter StartTime must not equal parameter EndTime."
    )
    assert gmd_error(stat_query("a", "Sum"), NextToken="%%%").code == "InvalidNextToken"


# ---------------------------------------------------------------------------- concurrency


def test_concurrent_puts_and_reads_lose_nothing(cw: CloudWatchProvider) -> None:
    def publish(worker: int) -> None:
        for i in range(200):
            cw.store.put(
                "AWS/Lambda",
                "Invocations",
                1.0,
                dimensions={"FunctionName": f"f{worker % 2}"},
                unit="Count",
                timestamp=at(i % 120),
            )
            if i % 50 == 0:
                stats(cw, namespace="AWS/Lambda", name="Invocations")

    threads = [threading.Thread(target=publish, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals = [
        sum(
            p["SampleCount"]
            for p in stats(
                cw,
                namespace="AWS/Lambda",
                name="Invocations",
                Dimensions=[{"Name": "FunctionName", "Value": f"f{k}"}],
            )
        )
        for k in (0, 1)
    ]
    assert totals == [800, 800]


def test_reset_and_status(cw: CloudWatchProvider) -> None:
    put(cw, {"MetricName": "a", "Value": 1.0}, {"MetricName": "b", "Values": [1.0, 2.0]})
    assert cw.status() == {"metrics": 2, "datapoints": 2}
    cw.reset()
    assert cw.status() == {"metrics": 0, "datapoints": 0}
    assert cw.store.list_metrics() == []
    assert MetricId("n", "m") == MetricId("n", "m", ())


# ---------------------------------------------------------------------------- over the wire


class _Raw:
    """The minimal raw stream AWSResponse reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> list[bytes]:
        return [self._body]


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json", "query"])
def test_boto3_client_through_protocols(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real client (forced onto one protocol) talks to the provider via protocols, no server."""
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", (protocol,))
    provider = provider_on(MetricStore())
    client = botocore.session.get_session().create_client(
        "cloudwatch",
        "us-east-1",
        endpoint_url="http://localhost:1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
    )
    used: set[str] = set()

    def serve(request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        incoming = AwsRequest.from_url(request.method, request.url, dict(request.headers), body)
        op, wire_protocol = protocols.identify_operation("cloudwatch", incoming)
        used.add(wire_protocol)
        try:
            params = protocols.parse_request(op, wire_protocol, incoming)
            result = getattr(provider, op.name)(params, CTX)
            status, headers, out = protocols.serialize_response(op, wire_protocol, result)
        except ServiceError as error:
            status, headers, out = protocols.serialize_error(op.service_model, wire_protocol, error)
        return AWSResponse(request.url, status, headers, _Raw(out))

    client.meta.events.register("before-send.cloudwatch", serve)
    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    # Enough data for botocore to gzip the PutMetricData body (it does above 10 kB).
    data = [
        {
            "MetricName": "Latency",
            "Values": [float(v) for v in range(1, 101)],
            "Timestamp": now,
            "Unit": "Milliseconds",
            "Dimensions": [{"Name": "FunctionName", "Value": f"fn-{i}"}],
        }
        for i in range(20)
    ]
    client.put_metric_data(Namespace="Course/Lab", MetricData=data)
    dims = [{"Name": "FunctionName", "Value": "fn-3"}]
    stat = client.get_metric_statistics(
        Namespace="Course/Lab",
        MetricName="Latency",
        Dimensions=dims,
        StartTime=now,
        EndTime=now + timedelta(minutes=1),
        Period=60,
        ExtendedStatistics=["p50", "p99"],
    )
    [point] = stat["Datapoints"]
    assert point["Timestamp"] == now and point["Unit"] == "Milliseconds"
    assert point["ExtendedStatistics"] == {"p50": 50.0, "p99": 99.0}
    query = {
        "Id": "avg",
        "MetricStat": {
            "Metric": {"Namespace": "Course/Lab", "MetricName": "Latency", "Dimensions": dims},
            "Period": 60,
            "Stat": "Average",
        },
    }
    data_result = client.get_metric_data(
        MetricDataQueries=[query], StartTime=now, EndTime=now + timedelta(minutes=1)
    )
    assert data_result["MetricDataResults"][0]["Values"] == [50.5]
    assert data_result["MetricDataResults"][0]["Timestamps"] == [now]
    listed = client.list_metrics(Namespace="Course/Lab")["Metrics"]
    assert len(listed) == 20
    with pytest.raises(client.exceptions.InvalidParameterCombinationException) as caught:
        client.get_metric_statistics(
            Namespace="Course/Lab",
            MetricName="Latency",
            StartTime=now,
            EndTime=now + timedelta(minutes=1),
            Period=60,
        )
    assert (
        caught.value.response["Error"]["Message"]
        == "Must specify either Statistics or ExtendedStatistics"
    )
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_metric_data(
            Namespace="AWS/Lambda", MetricData=[{"MetricName": "x", "Value": 1.0}]
        )
    assert used == {protocol}
