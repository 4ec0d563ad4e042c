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


# Functions and tasks read and write the course's tables.
RESOURCE_KINDS = [
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function", "ecs service", "ecs task"))
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "dynamodb_million_writes": Price(0.625, "1M write request units", "on-demand"),
    "dynamodb_gb_month": Price(0.25, "GB-month", "table storage"),
}
