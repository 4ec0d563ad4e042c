"""DynamoDB Streams to Aurora through an event source mapping: end-to-end lag and throughput.

A zip function upserts each batch of stream records into a table on a local Aurora cluster
with the Data API, one multi-row INSERT per batch. Each item carries the time it was written;
the row keeps MariaDB's `NOW(6)` at insert, so the lag from PutItem to the row being in
Aurora is measured by the database itself, not by polling. Lag: a burst of 1,000 PutItems
from four callers with the mapping's default batching window, once the function is warm.
Throughput: 2,000 records written while the mapping is disabled, then drained through the
one shard once enabled.
A delivery counter per row shows whether any record was lost or delivered twice.
"""

from __future__ import annotations

import io
import statistics
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .aurora import bench_cluster

SYNC = """
import os
import boto3

DATA = boto3.client("rds-data")
TARGET = {"resourceArn": os.environ["CLUSTER"], "secretArn": os.environ["SECRET"],
          "database": "bench"}

def handler(event, context):
    # One multi-row upsert per batch: the sink must not be the bottleneck being measured.
    values, parameters = [], []
    for n, record in enumerate(event["Records"]):
        image = record["dynamodb"]["NewImage"]
        values.append(f"(:id{n}, :at{n}, UNIX_TIMESTAMP(NOW(6)), 1)")
        parameters += [
            {"name": f"id{n}", "value": {"stringValue": image["id"]["S"]}},
            {"name": f"at{n}", "value": {"doubleValue": float(image["at"]["N"])}},
        ]
    DATA.execute_statement(
        **TARGET,
        sql="INSERT INTO synced (id, written_at, synced_at, deliveries) VALUES "
        + ", ".join(values)
        + " ON DUPLICATE KEY UPDATE deliveries = deliveries + 1",
        parameters=parameters,
    )
    return {"batchItemFailures": []}
"""


def bench_stream_sync(lab: Any, burst: int = 1000, backlog: int = 2000) -> dict[str, Any]:
    """Lag p50/p99 from PutItem to the Aurora row, records per second through one shard."""
    ddb, data = lab.client("dynamodb"), lab.client("rds-data")
    target = _cluster(lab)
    data.execute_statement(
        **target,
        sql="CREATE TABLE synced (id VARCHAR(40) PRIMARY KEY, written_at DOUBLE NOT NULL,"
        " synced_at DOUBLE NOT NULL, deliveries INT NOT NULL)",
    )
    stream_arn = ddb.create_table(
        TableName="bench-stream",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    function = _function(lab, target)
    lam = lab.client("lambda")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=stream_arn,
        FunctionName=function,
        StartingPosition="LATEST",
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )["UUID"]
    _wait_state(lam, mapping, "Enabled")

    def rows(prefix: str) -> list[tuple[float, float, int]]:
        found = data.execute_statement(
            **target,
            sql="SELECT written_at, synced_at, deliveries FROM synced WHERE id LIKE :prefix",
            parameters=[{"name": "prefix", "value": {"stringValue": f"{prefix}%"}}],
        )["records"]
        return [(r[0]["doubleValue"], r[1]["doubleValue"], r[2]["longValue"]) for r in found]

    _write(lab, "warm-", 1)  # the first batch starts the function's worker: not in the figures
    warm_rows = _wait_rows(rows, "warm-", 1)
    _write(lab, "lag-", burst)
    lag_rows = _wait_rows(rows, "lag-", burst)
    lags = sorted((synced - written) * 1000 for written, synced, _ in lag_rows)

    lam.update_event_source_mapping(UUID=mapping, Enabled=False)
    _wait_state(lam, mapping, "Disabled")
    _write(lab, "rate-", backlog)
    lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    rate_rows = _wait_rows(rows, "rate-", backlog)
    first = min(synced for _, synced, _ in rate_rows)
    last = max(synced for _, synced, _ in rate_rows)
    every_row = warm_rows + lag_rows + rate_rows
    deliveries = sum(d for *_, d in every_row)
    return {
        "lag_p50_ms": round(statistics.median(lags), 1),
        "lag_p99_ms": round(lags[min(len(lags) - 1, round(0.99 * len(lags)) - 1)], 1),
        "burst": burst,
        "records_per_s": round(backlog / max(last - first, 1e-6), 1),
        "backlog": backlog,
        "rows": len(every_row),
        "deliveries": deliveries,
        "written": 1 + burst + backlog,
    }


def _write(lab: Any, prefix: str, count: int, callers: int = 4) -> None:
    """`count` PutItems from `callers` threads, each item stamped with its write time."""
    clients = [
        lab.session.client("dynamodb", endpoint_url=lab.endpoint_url) for _ in range(callers)
    ]

    def put(caller: int) -> None:
        for n in range(caller, count, callers):
            item = {
                "id": {"S": f"{prefix}{n}-{uuid.uuid4().hex[:6]}"},
                "at": {"N": repr(time.time())},
            }
            clients[caller].put_item(TableName="bench-stream", Item=item)

    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(put, range(callers)))


def _wait_rows(rows: Any, prefix: str, count: int, timeout: float = 300) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(prefix)
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"only {len(found)} of {count} {prefix!r} rows reached Aurora")


def _wait_state(lam: Any, mapping: str, state: str) -> None:
    deadline = time.monotonic() + 60
    while lam.get_event_source_mapping(UUID=mapping)["State"] != state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"mapping not {state} after 60 s")
        time.sleep(0.2)


def _cluster(lab: Any) -> dict[str, str]:
    """A local Aurora cluster with the Data API; the Data API target of its `bench` database."""
    cluster = bench_cluster(lab, "bench-streams", data_api=True)
    return {
        "resourceArn": cluster["DBClusterArn"],
        "database": "bench",
        "secretArn": cluster["MasterUserSecret"]["SecretArn"],
    }


def _function(lab: Any, target: dict[str, str]) -> str:
    iam, lam = lab.client("iam"), lab.client("lambda")
    role = iam.create_role(RoleName="bench-streams", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", SYNC)
    lam.create_function(
        FunctionName="bench-streams",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Timeout=60,
        Code={"ZipFile": package.getvalue()},
        Environment={
            "Variables": {"CLUSTER": target["resourceArn"], "SECRET": target["secretArn"]}
        },
    )
    return "bench-streams"
