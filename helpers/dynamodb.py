"""DynamoDB tables for the course: get-or-create with tags, and their teardown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import cleanup, naming
from .costs import Price
from .lab import Lab
from .waiting import wait_for

KIND = "dynamodb table"


def ensure_table(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    key: str = "id",
    key_type: str = "S",
    stream_view: str | None = None,
) -> dict[str, Any]:
    """Return the table's description, creating it (on-demand billing, tagged) if missing."""
    table_name = lab.name(pattern, name, max_length=255)
    client = lab.client("dynamodb")
    try:
        table = client.describe_table(TableName=table_name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        extra: dict[str, Any] = {}
        if stream_view:
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view}
        client.create_table(
            TableName=table_name,
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": key_type}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=naming.tag_list(lab.tags(pattern)),
            **extra,
        )
        lab.ledger.record(KIND, table_name, pattern)
        table = {"TableStatus": "CREATING"}
    if table["TableStatus"] != "ACTIVE":
        table = wait_for(
            lambda: _active(client, table_name),
            what=f"table {table_name}",
            timeout=300,
            estimate=10,
        )
    return table


def stream_records(
    lab: Lab, stream_arn: str, first_sequence: str, last_sequence: str | None = None
) -> list[dict[str, Any]]:
    """The stream's records from one sequence number to another (both included).

    An on-failure record names sequence numbers only: this reads the records themselves,
    which the stream keeps for 24 hours.
    """
    streams = lab.client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    last = int(last_sequence or first_sequence)
    found: list[dict[str, Any]] = []
    for shard in shards:
        span = shard["SequenceNumberRange"]
        if int(span["StartingSequenceNumber"]) > last:
            continue
        if "EndingSequenceNumber" in span and int(span["EndingSequenceNumber"]) < int(
            first_sequence
        ):
            continue
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn,
            ShardId=shard["ShardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=first_sequence,
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=100)
            records = page["Records"]
            found += [r for r in records if int(r["dynamodb"]["SequenceNumber"]) <= last]
            if not records or int(records[-1]["dynamodb"]["SequenceNumber"]) >= last:
                break
            iterator = page.get("NextShardIterator")
    return found


def _active(client: Any, table_name: str) -> dict[str, Any] | None:
    """The table's description once it is ACTIVE."""
    table = client.describe_table(TableName=table_name)["Table"]
    return table if table["TableStatus"] == "ACTIVE" else None


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course table (all runs); names say run and pattern."""
    return cleanup.named(KIND, lab, "dynamodb.list_tables", "TableNames", "")


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a table and wait until it is gone."""
    client = lab.client("dynamodb")
    client.delete_table(TableName=resource.identifier)
    client.get_waiter("table_not_exists").wait(
        TableName=resource.identifier, WaiterConfig={"Delay": 2, "MaxAttempts": 90}
    )


# Functions and tasks read and write the course's tables; mappings read their streams.
RESOURCE_KINDS = [
    cleanup.ResourceKind(
        KIND,
        _find,
        _delete,
        after=("lambda function", "ecs service", "ecs task", "event source mapping"),
    )
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "dynamodb_million_writes": Price(0.625, "1M write request units", "on-demand"),
    "dynamodb_gb_month": Price(0.25, "GB-month", "table storage"),
}
