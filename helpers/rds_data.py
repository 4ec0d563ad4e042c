"""A small RDS Data API client: SQL over HTTPS with named parameters, results as DataFrames.

The Data API (`boto3.client("rds-data")`) runs SQL on an Aurora cluster without a database
driver or a network path to the database: every call carries the cluster ARN, the ARN of a
Secrets Manager secret holding the credentials, and the SQL with `:name` placeholders.
Parameters travel as typed `Field`s (`stringValue`, `longValue`, ...) plus a `typeHint` for
dates, times, decimals, UUIDs and JSON; `to_parameters` shows the mapping for plain Python
values. Results come back either as `records` (lists of Fields, with `columnMetadata` when
asked) or, for SELECT, as a JSON string (`formatRecordsAs="JSON"`); `query` reads both.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import numbers
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from botocore.exceptions import ClientError

from .costs import Price
from .waiting import wait_for

if TYPE_CHECKING:
    from .aurora import ClusterInfo
    from .lab import Lab

LONG_RANGE = (-(2**63), 2**63 - 1)
RESUMING = "DatabaseResumingException"  # an auto-paused cluster is waking up (~15-30 s)


def to_parameters(params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Named Data API parameters (`SqlParameter`s) from a plain dict, typeHints included."""
    if not params:
        return []
    parameters = []
    for name, value in params.items():
        if not isinstance(name, str) or not name.lstrip(":"):
            raise TypeError(f"parameter names must be non-empty strings, not {name!r}")
        field, hint = to_field(value, name)
        parameter: dict[str, Any] = {"name": name.lstrip(":"), "value": field}
        if hint:
            parameter["typeHint"] = hint
        parameters.append(parameter)
    return parameters


def to_field(value: Any, name: str = "value") -> tuple[dict[str, Any], str | None]:
    """One Python value as a Data API Field and its typeHint (None when none is needed)."""
    # The order of the checks matters: bool before int, datetime before date (subclasses).
    if type(value).__module__ == "numpy" and type(value).__name__ != "datetime64":
        value = value.item()  # numpy scalars from DataFrames: int64, float32, bool_
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return {"isNull": True}, None  # pandas' missing values become SQL NULL
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return {"booleanValue": value}, None
    if isinstance(value, numbers.Integral):
        if not LONG_RANGE[0] <= value <= LONG_RANGE[1]:
            raise ValueError(f"parameter {name!r}: {value} does not fit a 64-bit longValue")
        return {"longValue": int(value)}, None
    if isinstance(value, float):
        return {"doubleValue": value}, None
    if isinstance(value, Decimal):
        return {"stringValue": format(value, "f")}, "DECIMAL"  # 'f': never '1E+2'
    if isinstance(value, str):
        return {"stringValue": value}, None
    if isinstance(value, dt.datetime):  # before date: datetime is a subclass of date
        return {"stringValue": format_timestamp(value)}, "TIMESTAMP"
    if isinstance(value, dt.date):
        return {"stringValue": value.isoformat()}, "DATE"
    if isinstance(value, dt.time):
        return {"stringValue": format_time(value)}, "TIME"
    if isinstance(value, uuid.UUID):
        return {"stringValue": str(value)}, "UUID"
    if isinstance(value, dict | list):
        return {"stringValue": json.dumps(value)}, "JSON"
    if isinstance(value, bytes | bytearray | memoryview):
        return {"blobValue": bytes(value)}, None
    raise TypeError(
        f"parameter {name!r}: cannot send a {type(value).__name__} through the Data API; use "
        "str, bool, int, float, Decimal, date, time, datetime, UUID, dict, list, bytes or None "
        "(arrays are not supported: one parameter per value, or JSON)"
    )


def format_timestamp(value: dt.datetime) -> str:
    """'YYYY-MM-DD HH:MM:SS[.fff]' (the TIMESTAMP typeHint's format); aware values in UTC."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S") + _millis(value.microsecond)


def format_time(value: dt.time) -> str:
    """'HH:MM:SS[.fff]' (the TIME typeHint's format); aware values in UTC."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        moment = dt.datetime.combine(dt.date(2000, 1, 1), value).astimezone(dt.UTC)
        value = moment.time()
    return value.strftime("%H:%M:%S") + _millis(value.microsecond)


def _millis(microsecond: int) -> str:
    """'.fff' for a non-zero fraction (AWS's documented precision; truncated), else ''."""
    return f".{microsecond // 1000:03d}" if microsecond else ""


def from_field(field: Mapping[str, Any]) -> Any:
    """The Python value of one Data API Field (None for isNull, bytes for blobValue)."""
    if not field or field.get("isNull"):
        return None
    if "arrayValue" in field:
        return _from_array(field["arrayValue"])
    kind, value = next(iter(field.items()))  # a Field has exactly one member
    if kind == "blobValue" and isinstance(value, str):  # raw JSON from a non-boto3 caller
        return base64.b64decode(value)
    return value


def _from_array(array: Mapping[str, Any]) -> list[Any]:
    """The Python list of an arrayValue (nested arrays included)."""
    if "arrayValues" in array:
        return [_from_array(item) for item in array["arrayValues"]]
    return next(iter(array.values()), [])


def records_frame(response: Mapping[str, Any]) -> pd.DataFrame:
    """A DataFrame from `records` + `columnMetadata` (the response of includeResultMetadata)."""
    metadata = response.get("columnMetadata", [])
    columns = [column.get("label") or column.get("name", "") for column in metadata]
    rows = [[from_field(field) for field in record] for record in response.get("records", [])]
    if rows and not columns:
        columns = [f"col{i}" for i in range(len(rows[0]))]  # no metadata: name by position
    return pd.DataFrame(rows, columns=columns)


def formatted_frame(response: Mapping[str, Any]) -> pd.DataFrame:
    """A DataFrame from `formattedRecords` (the response of formatRecordsAs="JSON")."""
    records = json.loads(response.get("formattedRecords") or "[]")
    return pd.DataFrame.from_records(records)


class DataApi:
    """Run SQL on one Aurora database through the Data API."""

    def __init__(self, source: Lab | Any, cluster_arn: str, secret_arn: str, database: str):
        """Take a lab (its rds-data client is used) or a boto3 rds-data client."""
        self.client = source if hasattr(source, "execute_statement") else source.client("rds-data")
        self.cluster_arn = cluster_arn
        self.secret_arn = secret_arn
        self.database = database
        self.transaction_id: str | None = None  # set inside `with api.transaction():`

    @classmethod
    def for_cluster(cls, lab: Lab, cluster: ClusterInfo) -> DataApi:
        """A client for the cluster `helpers.aurora.ensure_cluster` returned."""
        if not cluster.secret_arn:
            raise ValueError(f"cluster {cluster.identifier} has no RDS-managed master secret")
        return cls(lab, cluster.arn, cluster.secret_arn, cluster.database)

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        transaction_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """ExecuteStatement; the raw response (without ResponseMetadata)."""
        arguments: dict[str, Any] = {**self._target(transaction_id), "sql": sql, **options}
        parameters = to_parameters(params)
        if parameters:
            arguments["parameters"] = parameters
        return self._call("execute_statement", arguments)

    def query(
        self, sql: str, params: Mapping[str, Any] | None = None, *, as_json: bool = True
    ) -> pd.DataFrame:
        """A SELECT's rows as a DataFrame (as_json=False: decode records with column labels)."""
        if as_json:
            return formatted_frame(self.execute(sql, params, formatRecordsAs="JSON"))
        return records_frame(self.execute(sql, params, includeResultMetadata=True))

    def batch(
        self,
        sql: str,
        param_sets: Iterable[Mapping[str, Any]],
        *,
        transaction_id: str | None = None,
    ) -> dict[str, Any]:
        """BatchExecuteStatement: one statement, run once per parameter set."""
        parameter_sets = [to_parameters(params) for params in param_sets]
        if not parameter_sets:
            return {"updateResults": []}
        arguments = {
            **self._target(transaction_id),
            "sql": sql.strip().rstrip(";"),  # the Data API refuses a trailing semicolon here
            "parameterSets": parameter_sets,
        }
        return self._call("batch_execute_statement", arguments)

    @contextmanager
    def transaction(self) -> Iterator[str]:
        """Begin; commit when the block ends, roll back if it raises. Yields the id."""
        if self.transaction_id is not None:
            raise RuntimeError("a transaction is already open on this DataApi (no nesting)")
        begun = self._call(
            "begin_transaction",
            {
                "resourceArn": self.cluster_arn,
                "secretArn": self.secret_arn,
                "database": self.database,
            },
        )
        self.transaction_id = begun["transactionId"]
        ending = {
            "resourceArn": self.cluster_arn,
            "secretArn": self.secret_arn,
            "transactionId": self.transaction_id,
        }
        try:
            yield self.transaction_id
        except BaseException:
            self.transaction_id = None
            self.client.rollback_transaction(**ending)
            raise
        self.transaction_id = None
        self.client.commit_transaction(**ending)

    def _target(self, transaction_id: str | None) -> dict[str, Any]:
        """The arguments every statement carries; the open transaction's id, if any."""
        target = {
            "resourceArn": self.cluster_arn,
            "secretArn": self.secret_arn,
            "database": self.database,
        }
        transaction_id = transaction_id or self.transaction_id
        if transaction_id:
            target["transactionId"] = transaction_id
        return target

    def _call(self, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call the Data API; while an auto-paused cluster resumes, wait and retry."""
        call = getattr(self.client, operation)
        try:
            response = call(**arguments)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != RESUMING:
                raise
            response = wait_for(
                lambda: _unless_resuming(call, arguments),
                what="database resuming from auto-pause",
                timeout=120,
                estimate=30,
                interval=3,
                hint="The cluster is still resuming; re-run the cell.",
            )
        response.pop("ResponseMetadata", None)
        return response


def _unless_resuming(call: Any, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """The call's response, or None while the database is still resuming."""
    try:
        return call(**arguments)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == RESUMING:
            return None
        raise


# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "data_api_million_requests": Price(0.35, "million requests", "RDS Data API, first billion"),
}
