"""The CloudWatch metrics provider: PutMetricData, GetMetricData, GetMetricStatistics, ListMetrics.

moto stores metrics but mixes namespaces when dimensions are given, starts buckets at the exact
StartTime, fails on percentiles and lists dimensionless metrics once per put. These four
operations are served here from the local metric store (`localcloud/metrics/`); alarms,
dashboards and every other CloudWatch operation stay with moto. Providers publish AWS/* metrics
into the same store through their context (`cloud.metrics`, `cloud.publisher`), without HTTP.

AWS semantics kept:
- A query matches only the series whose dimensions equal the query's dimensions, within its
  namespace; a query without dimensions sees only dimensionless data.
- StartTime is rounded down as documented: to the period when it is under 60 s, otherwise to the
  minute (5 minutes after 15 days, 1 hour after 63 days). Buckets start at the rounded StartTime
  and step by Period, so with the usual periods they sit on epoch multiples of the period.
  EndTime is exclusive. StorageResolution 60 (the default) stores data on the minute.
- Valid periods: 1, 5, 10, 20, 30 or a multiple of 60. GetMetricStatistics refuses more than
  1,440 datapoints; GetMetricData pages by MaxDatapoints (default 100,800) with NextToken.
- Percentiles (pNN, pNN.N) come from raw samples (Value, or Values expanded by Counts). A
  statistic set counts as a raw sample only if SampleCount is 1 or Minimum equals Maximum; a
  bucket with any other statistic set, or with a negative value, has no percentile.
- Without a Unit, GetMetricStatistics returns one datapoint per unit; GetMetricData keeps the
  alphabetically first unit and adds a MultipleUnits message (recorded AWS behaviour).
- Default GetMetricData labels: the metric name, plus the stat and/or period when queries on the
  same metric differ in them ("metric1 Sum 60").
- PutMetricData refuses namespaces starting with "AWS/", more than 1,000 data, 30 dimensions or
  150 values, mixed Value/Values/StatisticValues, unequal Values/Counts, unknown units, and
  timestamps over two weeks old or two hours ahead; it reports every such error at once.

Where the local cloud differs from AWS:
- Retention: all data stays at full resolution until `reset` (each series keeps its latest
  100,000 samples, a value of a Values list counting as one; the oldest data go first); AWS
  keeps sub-minute data 3 hours and downsamples after 15 and 63 days, and needs coarser periods
  for old start times.
- Data is visible at once (AWS: seconds to minutes; ListMetrics up to 15 minutes): the services'
  own metrics, batched once a second, are flushed before every read. Under the AWS timing
  profile (`localcloud/timing.py`) data become readable only after an ingestion delay.
- Metric math and Metrics Insights (`Expression`) are refused with a ValidationError saying so;
  of the extended statistics only percentiles exist (no tm, wm, pr, tc, ts, iqm).
- The percentile rule (nearest rank) is exact; AWS's is an undocumented approximation.
- Alarms are moto's and are never evaluated against this store.
- AccountId, IncludeLinkedAccounts, OwningAccount, EntityMetricData, StrictEntityValidation and
  LabelOptions are ignored. Error messages are AWS's where they are known, else close in style.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..context import CloudContext
from ..metrics.store import (
    BASIC_STATISTICS,
    UNITS,
    Datum,
    MetricId,
    MetricStore,
    dimensions_key,
    make_datum,
    stored_time,
    valid_period,
    valid_statistic,
)
from ..protocols import ServiceError, as_datetime
from ..registry import Provider, RequestContext

_QUERY_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")
_VALUE_LIMIT = 2.0**360  # AWS rejects magnitudes above 2^360
_DAY = 86400.0
_PERIODS = "1, 5, 10, 20, 30 or a multiple of 60"


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", message)


def _combination(message: str) -> ServiceError:
    return ServiceError("InvalidParameterCombination", message)


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationError", message)


def _unit_error(name: str) -> ServiceError:
    return _invalid(f"The parameter {name} must be a value in the set [ {', '.join(UNITS)} ].")


def _too_many(name: str, limit: int) -> ServiceError:
    return _invalid(f"The collection {name} must not have a size greater than {limit}.")


class CloudWatchProvider(Provider):
    """The four metric operations, on a thread-safe MetricStore."""

    service = "cloudwatch"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.store: MetricStore = cloud.metrics

    def reset(self) -> None:
        """Forget all metrics."""
        self.store.reset()

    def status(self) -> dict[str, Any]:
        """How many series and data points the store holds."""
        series, data = self.store.counts()
        return {"metrics": series, "datapoints": data}

    def PutMetricData(self, params: dict, context: RequestContext) -> dict:
        """Check every datum like AWS, then store them all in one step."""
        namespace, data = params["Namespace"], params.get("MetricData")
        if data is None:
            raise ServiceError("MissingParameter", "The parameter MetricData is required.")
        if namespace.startswith("AWS/"):
            raise _invalid(
                f"The value {namespace} for parameter Namespace is invalid: "
                'namespaces starting with "AWS/" are reserved for AWS.'
            )
        if len(data) > 1000:
            raise _too_many("MetricData", 1000)
        now, errors, items = self.store.clock(), [], []
        for i, raw in enumerate(data, 1):
            problems = _check_datum(f"MetricData.member.{i}", raw, now)
            errors += problems
            datum = None if problems else _to_datum(raw, now)
            if datum is not None:
                dims = dimensions_key(raw.get("Dimensions"))
                items.append((MetricId(namespace, raw["MetricName"], dims), datum))
        if errors:  # AWS lists every problem of the first problem's kind, one per line
            code = errors[0].code
            raise ServiceError(code, "\n".join(e.message for e in errors if e.code == code))
        self.store.insert(items)
        return {}

    def GetMetricStatistics(self, params: dict, context: RequestContext) -> dict:
        """Datapoints per period (and per unit when no Unit is given), oldest first."""
        self.cloud.publisher.flush()  # what the services measured so far is readable
        stats, extended = params.get("Statistics") or [], params.get("ExtendedStatistics") or []
        _check_statistics(stats, extended)
        period, unit = params["Period"], params.get("Unit")
        if not valid_period(period):
            raise _invalid(f"The parameter Period must be {_PERIODS}.")
        if unit is not None and unit not in UNITS:
            raise _unit_error("Unit")
        if len(params.get("Dimensions") or []) > 30:
            raise _too_many("Dimensions", 30)
        start, end = params["StartTime"].timestamp(), params["EndTime"].timestamp()
        if start >= end:
            raise _invalid("The parameter StartTime must be less than the parameter EndTime.")
        start = self.store.round_start(start, period)
        requested = math.ceil((end - start) / period)
        if requested > 1440:
            raise _combination(
                f"You have requested up to {requested} datapoints, which exceeds the limit of "
                "1440. You may reduce the datapoints requested by increasing Period, or "
                "decreasing the time range."
            )
        dims = dimensions_key(params.get("Dimensions"))
        metric = MetricId(params["Namespace"], params["MetricName"], dims)
        datapoints = []
        for bucket in self.store.buckets(metric, start, end, period, unit):
            point: dict[str, Any] = {
                "Timestamp": as_datetime(bucket.timestamp),
                "Unit": bucket.unit,
            }
            point.update({s: v for s in stats if (v := bucket.statistic(s)) is not None})
            if extended:
                values = {p: bucket.statistic(p) for p in extended}
                point["ExtendedStatistics"] = {p: v for p, v in values.items() if v is not None}
            datapoints.append(point)
        return {"Label": params["MetricName"], "Datapoints": datapoints}

    def GetMetricData(self, params: dict, context: RequestContext) -> dict:
        """MetricStat queries, paged by MaxDatapoints; expressions are refused."""
        self.cloud.publisher.flush()  # what the services measured so far is readable
        queries = params["MetricDataQueries"]
        _check_queries(queries)
        start, end = params["StartTime"].timestamp(), params["EndTime"].timestamp()
        if start == end:
            raise _validation("The parameter StartTime must not equal parameter EndTime.")
        if start > end:
            raise _validation("The parameter StartTime must be less than the parameter EndTime.")
        scan_by = params.get("ScanBy", "TimestampDescending")
        if scan_by not in ("TimestampDescending", "TimestampAscending"):
            raise _validation(
                f"The value {scan_by} for parameter ScanBy is invalid: "
                "use TimestampDescending or TimestampAscending."
            )
        budget = params.get("MaxDatapoints", 100_800)
        if budget < 1:
            raise _validation("The parameter MaxDatapoints must be greater than 0.")
        first, offset = _decode_token(params.get("NextToken"))
        labels = _default_labels(queries)
        returned = [q for q in queries if q.get("ReturnData", True)]
        results: list[dict[str, Any]] = []
        out: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
        for index in range(first, len(returned)):
            query = returned[index]
            times, values, messages = self._series(query["MetricStat"], start, end, scan_by)
            skip = offset if index == first else 0
            take = min(len(times) - skip, budget)
            budget -= take
            entry: dict[str, Any] = {
                "Id": query["Id"],
                "Label": query.get("Label") or labels[query["Id"]],
                "Timestamps": [as_datetime(t) for t in times[skip : skip + take]],
                "Values": values[skip : skip + take],
                "StatusCode": "Complete",
            }
            if messages:
                entry["Messages"] = messages
            results.append(entry)
            if skip + take < len(times):  # out of budget: the rest comes with NextToken
                entry["StatusCode"] = "PartialData"
                out["NextToken"] = _encode_token(index, skip + take)
                break
        return out

    def _series(
        self, stat: Mapping[str, Any], start: float, end: float, scan_by: str
    ) -> tuple[list[float], list[float], list[dict[str, str]]]:
        """Timestamps, values and messages of one MetricStat query, in ScanBy order."""
        metric = stat["Metric"]
        dims = dimensions_key(metric.get("Dimensions"))
        key = MetricId(metric["Namespace"], metric["MetricName"], dims)
        period = stat["Period"]
        start = self.store.round_start(start, period)
        buckets = self.store.buckets(key, start, end, period, stat.get("Unit"))
        messages = []
        units = sorted({b.unit for b in buckets})
        if len(units) > 1:  # only without a Unit: AWS keeps the first unit and says so
            listed = ", ".join(units)
            messages.append(
                {"Code": "MultipleUnits", "Value": f"Multiple units returned: '[{listed}]'"}
            )
            buckets = [b for b in buckets if b.unit == units[0]]
        points = [(b.timestamp, v) for b in buckets if (v := b.statistic(stat["Stat"])) is not None]
        if scan_by == "TimestampDescending":
            points.reverse()
        return [t for t, _ in points], [v for _, v in points], messages

    def ListMetrics(self, params: dict, context: RequestContext) -> dict:
        """Distinct metrics matching the filters, sorted, 500 per page."""
        self.cloud.publisher.flush()  # what the services measured so far is readable
        recently = params.get("RecentlyActive")
        if recently not in (None, "PT3H"):
            raise _invalid("The parameter RecentlyActive must be a value in the set [ PT3H ].")
        filters = params.get("Dimensions") or []
        if len(filters) > 10:
            raise _too_many("Dimensions", 10)
        since = self.store.clock() - 3 * 3600 if recently else None
        found = self.store.list_metrics(
            params.get("Namespace"), params.get("MetricName"), filters, since
        )
        try:
            first = _decode_token(params.get("NextToken"))[1]
        except ServiceError:
            raise _invalid("The value for parameter NextToken is invalid.") from None
        out: dict[str, Any] = {"Metrics": [_metric_out(m) for m in found[first : first + 500]]}
        if first + 500 < len(found):
            out["NextToken"] = _encode_token(0, first + 500)
        return out


def _check_datum(where: str, raw: Mapping[str, Any], now: float) -> list[ServiceError]:
    """Every problem AWS would report for one MetricDatum."""
    errors = []
    given = [k for k in ("Value", "StatisticValues", "Values") if raw.get(k) is not None]
    for a, b in zip(given, given[1:], strict=False):
        errors.append(
            _combination(
                f"The parameters {where}.{a} and {where}.{b} are mutually exclusive "
                "and you have specified both."
            )
        )
    if not given:
        errors.append(
            _combination(
                f"At least one of the parameters {where}.Value, {where}.StatisticValues "
                f"or {where}.Values must be specified."
            )
        )
    values, counts, stats = raw.get("Values"), raw.get("Counts"), raw.get("StatisticValues")
    if counts is not None and values is None:
        errors.append(_combination(f"The parameter {where}.Counts requires {where}.Values."))
    if values is not None and counts is not None and len(values) != len(counts):
        errors.append(
            _invalid(f"The parameters {where}.Values and {where}.Counts must be of the same size.")
        )
    if values is not None and len(values) > 150:
        errors.append(_too_many(f"{where}.Values", 150))
    numbers = [(f"{where}.Value", raw.get("Value"))]
    numbers += [(f"{where}.Values.member.{j}", v) for j, v in enumerate(values or (), 1)]
    numbers += [(f"{where}.StatisticValues.{k}", v) for k, v in (stats or {}).items()]
    for name, number in numbers:
        if number is not None and not (math.isfinite(number) and abs(number) <= _VALUE_LIMIT):
            errors.append(_invalid(f"The value {number} for parameter {name} is invalid."))
    if stats is not None and stats["SampleCount"] <= 0:
        errors.append(_invalid(f"The parameter {where}.StatisticValues.SampleCount must be > 0."))
    if stats is not None and stats["Minimum"] > stats["Maximum"]:
        errors.append(_invalid(f"The parameter {where}.StatisticValues.Minimum exceeds Maximum."))
    dims = raw.get("Dimensions") or []
    if len(dims) > 30:
        errors.append(_too_many(f"{where}.Dimensions", 30))
    if len({d["Name"] for d in dims}) != len(dims):
        errors.append(_invalid(f"The collection {where}.Dimensions has duplicate names."))
    if (raw.get("Unit") or "None") not in UNITS:
        errors.append(_unit_error(f"{where}.Unit"))
    if raw.get("StorageResolution", 60) not in (1, 60):
        errors.append(
            _invalid(
                f"The parameter {where}.StorageResolution must be a value in the set [ 1, 60 ]."
            )
        )
    when = as_datetime(raw["Timestamp"]).timestamp() if raw.get("Timestamp") else now
    if when < now - 14 * _DAY:
        message = "must specify a time within the past two weeks."
        errors.append(_invalid(f"The parameter {where}.Timestamp {message}"))
    elif when > now + 2 * 3600:
        message = "must specify a time no more than two hours in the future."
        errors.append(_invalid(f"The parameter {where}.Timestamp {message}"))
    return errors


def _to_datum(raw: Mapping[str, Any], now: float) -> Datum | None:
    """A checked MetricDatum as stored data (None when its Counts are all zero)."""
    when = as_datetime(raw["Timestamp"]).timestamp() if raw.get("Timestamp") else now
    return make_datum(
        stored_time(when, raw.get("StorageResolution", 60)),
        raw.get("Unit") or "None",
        raw.get("Value"),
        raw.get("Values"),
        raw.get("Counts"),
        raw.get("StatisticValues"),
    )


def _check_statistics(stats: list[str], extended: list[str]) -> None:
    """GetMetricStatistics wants Statistics or ExtendedStatistics, valid and not both."""
    if not stats and not extended:
        raise _combination("Must specify either Statistics or ExtendedStatistics")
    if stats and extended:
        raise _combination("Must specify either Statistics or ExtendedStatistics, but not both.")
    for i, stat in enumerate(stats, 1):
        if stat not in BASIC_STATISTICS:
            raise _invalid(
                f"The parameter Statistics.member.{i} must be a value in the set "
                "[ Minimum, Maximum, Average, SampleCount, Sum ]."
            )
    if len(extended) > 10:
        raise _too_many("ExtendedStatistics", 10)
    for i, stat in enumerate(extended, 1):
        if stat in BASIC_STATISTICS or not valid_statistic(stat):
            raise _invalid(
                f"The value {stat} for parameter ExtendedStatistics.member.{i} is invalid: "
                "the local cloud supports the percentiles p0.0 to p100."
            )


def _check_queries(queries: list[dict[str, Any]]) -> None:
    """Reject malformed queries and the expressions the local cloud cannot evaluate."""
    if len(queries) > 500:
        raise _validation("The collection MetricDataQueries must not have a size greater than 500.")
    ids = [q["Id"] for q in queries]
    if len(set(ids)) != len(ids):
        raise _validation("The values for parameter Id in MetricDataQueries are not unique.")
    for i, query in enumerate(queries, 1):
        where = f"MetricDataQueries.member.{i}"
        if not _QUERY_ID.fullmatch(query["Id"]):
            raise _validation(
                f"The value {query['Id']} for parameter {where}.Id is invalid: it must start "
                "with a lowercase letter and hold only letters, digits and underscores."
            )
        if ("MetricStat" in query) == ("Expression" in query):
            raise _validation(
                f"Exactly one of {where}.MetricStat and {where}.Expression is needed."
            )
        if "Expression" in query:
            raise _validation(
                f"{where}.Expression: metric math and Metrics Insights are not supported by the "
                "local cloud. Query each metric with MetricStat and combine the values in Python."
            )
        stat = query["MetricStat"]
        if not stat["Metric"].get("Namespace") or not stat["Metric"].get("MetricName"):
            raise _validation(f"{where}.MetricStat.Metric needs a Namespace and a MetricName.")
        if not valid_statistic(stat["Stat"]):
            raise _validation(
                f"The value {stat['Stat']} for parameter {where}.MetricStat.Stat "
                "is not a valid statistic."
            )
        if not valid_period(stat["Period"]):
            raise _validation(
                f"The value {stat['Period']} for parameter {where}.MetricStat.Period is invalid: "
                f"use {_PERIODS}."
            )
        if stat.get("Unit") is not None and stat["Unit"] not in UNITS:
            raise _unit_error(f"{where}.MetricStat.Unit")


def _default_labels(queries: list[dict[str, Any]]) -> dict[str, str]:
    """The metric name, plus stat and period where they tell queries on one metric apart."""
    groups: dict[MetricId, list[dict[str, Any]]] = defaultdict(list)
    for query in queries:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = dimensions_key(metric.get("Dimensions"))
            groups[MetricId(metric["Namespace"], metric["MetricName"], dims)].append(query)
    labels = {}
    for metric, members in groups.items():
        stats = {q["MetricStat"]["Stat"] for q in members}
        periods = {q["MetricStat"]["Period"] for q in members}
        for query in members:
            parts = [metric.name]
            if len(stats) > 1:
                parts.append(query["MetricStat"]["Stat"])
            if len(periods) > 1:
                parts.append(str(query["MetricStat"]["Period"]))
            labels[query["Id"]] = " ".join(parts)
    return labels


def _metric_out(metric: MetricId) -> dict[str, Any]:
    """A metric as ListMetrics returns it."""
    dims = [{"Name": n, "Value": v} for n, v in metric.dimensions]
    return {"Namespace": metric.namespace, "MetricName": metric.name, "Dimensions": dims}


def _encode_token(index: int, offset: int) -> str:
    """An opaque NextToken holding where the next page starts."""
    return base64.urlsafe_b64encode(json.dumps([index, offset]).encode()).decode()


def _decode_token(token: str | None) -> tuple[int, int]:
    """The (query index, offset) of a NextToken; (0, 0) without one."""
    if not token:
        return 0, 0
    try:
        index, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(index), int(offset)
    except (ValueError, TypeError) as error:
        raise ServiceError(
            "InvalidNextToken", "The service couldn't process the NextToken."
        ) from error
