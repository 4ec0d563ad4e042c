"""The course's stream helpers against the local cloud: table with a stream, mapping, queue.

ensure_event_source_mapping converges (a second call changes nothing, a changed setting is
updated in place), stream_records reads back what an on-failure record points at, and the
teardown deletes the mapping before the function and the table.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from live_fixtures import zip_files
from polling import wait_until

import helpers
from helpers import cleanup

FAILING = textwrap.dedent(
    """
    def handler(event, context):
        raise ValueError("always")
    """
)


@pytest.fixture
def stream_lab(lab: helpers.Lab, lambda_role: str):
    """A course table with a stream and a failing course function; torn down afterwards."""
    table = helpers.dynamodb.ensure_table(
        lab, "21", "helper-events", key="saleId", stream_view="NEW_AND_OLD_IMAGES"
    )
    name = lab.name("21", "helper-fn")
    lab.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=lambda_role,
        Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": FAILING})},
    )
    yield table, name
    cleanup.teardown(lab, pattern="21", quiet=True)


def test_mapping_converges_and_failures_point_at_stream_records(lab, stream_lab):
    table, function = stream_lab
    queue = helpers.sqs.ensure_queue(lab, "21", "helper-failures")
    assert helpers.sqs.ensure_queue(lab, "21", "helper-failures") == queue
    settings = {"batch_size": 10, "max_retries": 0, "on_failure_arn": queue.arn}
    first = helpers.lambda_.ensure_event_source_mapping(
        lab, function, table["LatestStreamArn"], starting_position="TRIM_HORIZON", **settings
    )
    again = helpers.lambda_.ensure_event_source_mapping(
        lab, function, table["LatestStreamArn"], starting_position="TRIM_HORIZON", **settings
    )
    assert first["State"] == again["State"] == "Enabled" and again["UUID"] == first["UUID"]
    assert again["LastModified"] == first["LastModified"]  # nothing to change: no update
    changed = helpers.lambda_.ensure_event_source_mapping(
        lab, function, table["LatestStreamArn"], bisect_on_error=True, **settings
    )
    assert changed["UUID"] == first["UUID"] and changed["BisectBatchOnFunctionError"] is True
    with pytest.raises(ValueError, match="max_record_age_s"):
        helpers.lambda_.ensure_event_source_mapping(
            lab, function, table["LatestStreamArn"], max_record_age_s=30
        )

    lab.client("dynamodb").put_item(
        TableName=table["TableName"], Item={"saleId": {"S": "bad"}, "quantity": {"S": "lots"}}
    )
    failures = wait_until(lambda: helpers.sqs.receive_json(lab, queue), what="failure record")
    info = failures[0]["DDBStreamBatchInfo"]
    records = helpers.dynamodb.stream_records(
        lab, table["LatestStreamArn"], info["startSequenceNumber"], info["endSequenceNumber"]
    )
    assert [r["dynamodb"]["NewImage"]["quantity"] for r in records] == [{"S": "lots"}]

    found = {r.kind: r for r in cleanup.find_resources(lab, pattern="21")}
    assert found["event source mapping"].identifier == f"{function} <- {table['TableName']}"
    kinds = [r.kind for r in cleanup.find_resources(lab, pattern="21")]
    assert kinds.index("event source mapping") < kinds.index("lambda function")
    assert kinds.index("event source mapping") < kinds.index("dynamodb table")
    rows = cleanup.teardown(lab, pattern="21", quiet=True)
    assert {r["kind"] for r in rows} >= {"event source mapping", "sqs queue", "dynamodb table"}
    assert all(r["result"] == "deleted" for r in rows), json.dumps(rows)
    listed = lab.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert first["UUID"] not in [m["UUID"] for m in listed]
