"""Lambda event source mappings on DynamoDB streams, against a live local cloud.

Each test writes items into a table with a stream; the function reports every batch it
receives to an SQS "sink" queue (keys, sequence numbers, whether it failed), so the tests
see exactly what was delivered, in which batches and in which order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import ZipFunctions, unique
from polling import wait_until

import helpers

HANDLER = textwrap.dedent(
    """
    import json, os
    import boto3

    sqs = boto3.client("sqs")

    def handler(event, context):
        records = event["Records"]
        poison = [r for r in records if "poison" in json.dumps(r["dynamodb"].get("NewImage", {}))]
        mode = os.environ.get("MODE", "ok")
        failed = bool(poison) and mode != "ok"
        sqs.send_message(QueueUrl=os.environ["SINK"], MessageBody=json.dumps({
            "failed": failed,
            "records": [{"pk": r["dynamodb"]["Keys"]["pk"]["S"], "event": r["eventName"],
                         "seq": r["dynamodb"]["SequenceNumber"], "source": r["eventSourceARN"],
                         "created": r["dynamodb"]["ApproximateCreationDateTime"]}
                        for r in records]}))
        if failed and mode == "raise":
            raise ValueError("poison record")
        if failed and mode == "report":
            return {"batchItemFailures": [
                {"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in poison]}
        return {"batchItemFailures": []}
    """
)


@dataclass
class Setup:
    """A table with a stream, a function on it and the queues to watch."""

    lab: helpers.Lab
    table: str
    stream_arn: str
    function: str
    sink: str
    dead: str

    def put(self, pk: str, value: str = "good", **more: str) -> None:
        item = {"pk": {"S": pk}, "value": {"S": value}}
        item.update({k: {"S": v} for k, v in more.items()})
        self.lab.client("dynamodb").put_item(TableName=self.table, Item=item)

    def map(self, **settings: Any) -> dict[str, Any]:
        settings.setdefault("StartingPosition", "TRIM_HORIZON")
        return self.lab.client("lambda").create_event_source_mapping(
            EventSourceArn=self.stream_arn, FunctionName=self.function, **settings
        )

    def batches(self, queue: str | None = None) -> list[dict[str, Any]]:
        """Every message so far on the sink queue (or another), oldest first."""
        sqs, found = self.lab.client("sqs"), []
        while True:
            got = sqs.receive_message(QueueUrl=queue or self.sink, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(
                    QueueUrl=queue or self.sink, ReceiptHandle=message["ReceiptHandle"]
                )


class Collector:
    """Messages gathered across polls (receiving deletes them from the queue)."""

    def __init__(self, setup: Setup, queue: str | None = None) -> None:
        self.setup, self.queue, self.items = setup, queue, []

    def until(self, check: Any, what: str, timeout: float = 60) -> list[dict[str, Any]]:
        def poll() -> bool:
            self.items += self.setup.batches(self.queue)
            return check(self.items)

        wait_until(poll, what=what, timeout=timeout, explain=lambda: json.dumps(self.items)[-2000:])
        return self.items


@pytest.fixture
def setup(module_lab: helpers.Lab, zip_functions: ZipFunctions, request) -> Iterator[Any]:
    """A factory: setup(mode, **function settings) -> Setup; everything is deleted after."""
    made: list[tuple[str, Any]] = []
    ddb, sqs, lam = (
        module_lab.client("dynamodb"),
        module_lab.client("sqs"),
        module_lab.client("lambda"),
    )

    def make(mode: str = "ok", **settings: Any) -> Setup:
        table = ddb.create_table(
            TableName=unique("pytest-esm"),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        made.append(("table", table["TableName"]))
        sink = sqs.create_queue(QueueName=unique("pytest-sink"))["QueueUrl"]
        dead = sqs.create_queue(QueueName=unique("pytest-dead"))["QueueUrl"]
        made.extend([("queue", sink), ("queue", dead)])
        function = zip_functions.create(
            {"app.py": HANDLER},
            "app.handler",
            Timeout=30,
            Environment={"Variables": {"SINK": sink, "MODE": mode}},
            **settings,
        )
        return Setup(
            module_lab,
            table["TableName"],
            table["LatestStreamArn"],
            function["FunctionName"],
            sink,
            dead,
        )

    yield make
    for mapping in lam.list_event_source_mappings().get("EventSourceMappings", []):
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_event_source_mapping(UUID=mapping["UUID"])
    for kind, name in made:
        with contextlib.suppress(ClientError):
            if kind == "table":
                ddb.delete_table(TableName=name)
            else:
                sqs.delete_queue(QueueUrl=name)


def _queue_arn(lab: helpers.Lab, url: str) -> str:
    attributes = lab.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _state(lab: helpers.Lab, uuid: str) -> str:
    return lab.client("lambda").get_event_source_mapping(UUID=uuid)["State"]


def _delivered(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records of the batches that succeeded, in delivery order."""
    return [r for b in batches if not b["failed"] for r in b["records"]]


def test_mapping_api_has_aws_defaults_states_and_errors(module_lab, setup):
    s = setup()
    lam = module_lab.client("lambda")
    created = s.map(StartingPosition="LATEST")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating" and created["StateTransitionReason"] == "User action"
    assert created["LastProcessingResult"] == "No records processed"
    assert {k: created[k] for k in ("BatchSize", "MaximumBatchingWindowInSeconds")} == {
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
    }
    assert created["MaximumRecordAgeInSeconds"] == -1 and created["MaximumRetryAttempts"] == -1
    assert created["ParallelizationFactor"] == 1 and created["BisectBatchOnFunctionError"] is False
    assert created["DestinationConfig"] == {"OnFailure": {}}
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{created['UUID']}")
    uuid = created["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    listed = lam.list_event_source_mappings(FunctionName=s.function)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uuid]

    def error(**settings: Any) -> dict[str, Any]:
        with pytest.raises(ClientError) as raised:
            s.map(**settings)
        return raised.value.response

    duplicate = error()
    assert duplicate["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert (
        duplicate["Error"]["Code"] == "ResourceConflictException"
        and uuid in duplicate["Error"]["Message"]
    )
    with pytest.raises(ClientError) as raised:
        lam.create_event_source_mapping(
            EventSourceArn=s.stream_arn + "0", FunctionName=s.function, StartingPosition="LATEST"
        )
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert raised.value.response["Error"]["Message"].startswith("Stream not found")
    lam.delete_event_source_mapping(UUID=uuid)
    bad_filter = error(FilterCriteria={"Filters": [{"Pattern": "{not json"}]})
    assert bad_filter["Error"]["Message"] == "Invalid filter pattern definition."
    assert error(MaximumRecordAgeInSeconds=30)["Error"]["Code"] == "InvalidParameterValueException"
    at_timestamp = error(StartingPosition="AT_TIMESTAMP")  # Kinesis only, not DynamoDB
    assert at_timestamp["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as raised:
        lam.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_batches_keep_order_filters_drop_records_and_iterator_age_is_published(module_lab, setup):
    s = setup()
    keep = {
        "Pattern": json.dumps(
            {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["keep"]}}}}
        )
    }
    uuid = s.map(BatchSize=3, FilterCriteria={"Filters": [keep]})["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    for n in range(7):
        s.put(f"k{n}", kind="keep")
        s.put(f"d{n}", kind="drop")
    s.put("k0", value="changed", kind="keep")  # a MODIFY: filtered out
    batches = Collector(s).until(lambda got: len(_delivered(got)) >= 7, "7 kept records")
    delivered = _delivered(batches)
    assert [r["pk"] for r in delivered] == [f"k{n}" for n in range(7)]
    assert all(len(b["records"]) <= 3 for b in batches)
    assert [int(r["seq"]) for r in delivered] == sorted(int(r["seq"]) for r in delivered)
    assert {r["source"] for r in delivered} == {s.stream_arn}
    mapping = module_lab.client("lambda").get_event_source_mapping(UUID=uuid)
    assert mapping["LastProcessingResult"] == "OK"

    def iterator_age() -> list[dict[str, Any]]:
        return module_lab.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="IteratorAge",
            Dimensions=[{"Name": "FunctionName", "Value": s.function}],
            StartTime=time.time() - 600,
            EndTime=time.time() + 60,
            Period=60,
            Statistics=["Maximum", "SampleCount"],
        )["Datapoints"]

    points = wait_until(iterator_age, what="IteratorAge data points")
    assert points[0]["Unit"] == "Milliseconds" and sum(p["SampleCount"] for p in points) >= 3


def test_batching_window_gathers_records_into_one_batch(module_lab, setup):
    s = setup()
    uuid = s.map(BatchSize=50, MaximumBatchingWindowInSeconds=3)["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    for n in range(6):
        s.put(f"w{n}")
    batches = Collector(s).until(lambda got: len(_delivered(got)) >= 6, "6 records")
    assert [len(b["records"]) for b in batches] == [6]


def test_parallelization_keeps_the_order_of_each_key(module_lab, setup):
    s = setup()
    uuid = s.map(BatchSize=2, ParallelizationFactor=4)["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    for version in range(5):
        for key in range(6):
            s.put(f"key{key}", value=f"v{version}")
    batches = Collector(s).until(lambda got: len(_delivered(got)) >= 30, "30 records")
    delivered = _delivered(batches)
    assert len(delivered) == 30 and len({r["seq"] for r in delivered}) == 30  # none twice
    for key in range(6):
        mine = [int(r["seq"]) for r in delivered if r["pk"] == f"key{key}"]
        assert mine == sorted(mine) and len(mine) == 5


@pytest.mark.parametrize("destination", ["sqs", "sns"])
def test_retries_to_exhaustion_send_the_invocation_record(module_lab, setup, destination):
    s = setup("raise")
    target, watch = _queue_arn(module_lab, s.dead), s.dead
    if destination == "sns":
        sns = module_lab.client("sns")
        target = sns.create_topic(Name=unique("pytest-failures"))["TopicArn"]
        sns.subscribe(TopicArn=target, Protocol="sqs", Endpoint=_queue_arn(module_lab, s.dead))
    uuid = s.map(
        BatchSize=1,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": target}},
    )["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    s.put("bad", value="poison")
    s.put("after")
    failures = Collector(s, watch).until(bool, "the on-failure record")
    record = failures[0] if destination == "sqs" else json.loads(failures[0]["Message"])
    batches = Collector(s).until(lambda got: _delivered(got), "the record after it")
    tries = [b for b in batches if b["failed"]]
    assert len(tries) == 3 and _delivered(batches)[0]["pk"] == "after"
    bad_seq = tries[0]["records"][0]["seq"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    info = record["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == bad_seq
    assert info["batchSize"] == 1 and info["streamArn"] == s.stream_arn
    assert record["version"] == "1.0" and info["shardId"].startswith("shardId-")


def test_bisect_isolates_the_one_bad_record(module_lab, setup):
    s = setup("raise")
    uuid = s.map(
        BatchSize=8,
        MaximumBatchingWindowInSeconds=2,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": _queue_arn(module_lab, s.dead)}},
    )["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    for n in range(8):
        s.put(f"r{n}", value="poison" if n == 5 else "good")
    failures = Collector(s, s.dead).until(bool, "the on-failure record")
    batches = Collector(s).until(lambda got: len(_delivered(got)) >= 7, "the 7 good records")
    assert sorted(r["pk"] for r in _delivered(batches)) == [f"r{n}" for n in range(8) if n != 5]
    sizes = [len(b["records"]) for b in batches if b["failed"]]
    assert sizes[:4] == [8, 4, 2, 1] and sizes[4:] == [1]  # halves, then 1 retry of the record
    info = failures[0]["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and failures[0]["requestContext"]["approximateInvokeCount"] == 2


def test_partial_batch_response_checkpoints_at_the_lowest_failure(module_lab, setup):
    s = setup("report")
    uuid = s.map(
        BatchSize=10,
        MaximumBatchingWindowInSeconds=2,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": _queue_arn(module_lab, s.dead)}},
    )["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    for n in range(10):
        s.put(f"p{n}", value="poison" if n in (3, 6) else "good")
    failures = Collector(s, s.dead).until(bool, "the on-failure record")
    batches = Collector(s).until(lambda got: len(got) >= 2, "two invocations")
    first, second = batches[0]["records"], batches[1]["records"]
    assert [r["pk"] for r in first] == [f"p{n}" for n in range(10)]
    assert [r["pk"] for r in second] == [f"p{n}" for n in range(3, 10)]  # from the lowest
    record = failures[0]
    assert record["responseContext"]["functionError"] is None  # no error: a reported failure
    assert record["DDBStreamBatchInfo"]["batchSize"] == 7
    assert record["DDBStreamBatchInfo"]["startSequenceNumber"] == second[0]["seq"]
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_disabled_mapping_resumes_where_it_stopped(module_lab, setup):
    s = setup()
    lam = module_lab.client("lambda")
    uuid = s.map()["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    s.put("before")
    collector = Collector(s)
    collector.until(lambda got: len(_delivered(got)) == 1, "the first record")
    disabling = lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert disabling["State"] == "Disabling"
    wait_until(lambda: _state(module_lab, uuid) == "Disabled", what="mapping disabled")
    for n in range(3):
        s.put(f"while-disabled-{n}")
    assert s.batches() == []  # nothing is delivered while the mapping is disabled
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    got = collector.until(lambda got: len(_delivered(got)) >= 4, "the records written meanwhile")
    assert [r["pk"] for r in _delivered(got)] == ["before"] + [
        f"while-disabled-{n}" for n in range(3)
    ]
    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"
    wait_until(
        lambda: not lam.list_event_source_mappings(FunctionName=s.function)["EventSourceMappings"],
        what="mapping deleted",
    )


def test_throttled_function_is_retried_without_using_up_retries(module_lab, setup):
    s = setup()
    lam = module_lab.client("lambda")
    lam.put_function_concurrency(FunctionName=s.function, ReservedConcurrentExecutions=0)
    uuid = s.map(
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": _queue_arn(module_lab, s.dead)}},
    )["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    s.put("throttled")
    wait_until(
        lambda: "throttled" in lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"],
        what="a throttled invocation",
    )
    lam.delete_function_concurrency(FunctionName=s.function)
    batches = Collector(s).until(_delivered, "the record after the throttle")
    assert [r["pk"] for r in _delivered(batches)] == ["throttled"]
    assert s.batches(s.dead) == []


@pytest.mark.long
def test_records_older_than_the_maximum_age_are_discarded(module_lab, setup):
    s = setup("raise")
    uuid = s.map(
        MaximumRecordAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": _queue_arn(module_lab, s.dead)}},
    )["UUID"]
    wait_until(lambda: _state(module_lab, uuid) == "Enabled", what="mapping enabled")
    s.put("stuck", value="poison")
    failures = Collector(s, s.dead).until(bool, "the record-age failure", timeout=120)
    assert failures[0]["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failures[0]["DDBStreamBatchInfo"]["batchSize"] == 1
    assert failures[0]["requestContext"]["approximateInvokeCount"] > 1  # retried until then


WINDOWED = textwrap.dedent(
    """
    import json, os
    import boto3

    sqs = boto3.client("sqs")

    def handler(event, context):
        state = dict(event["state"])
        state["count"] = state.get("count", 0) + len(event["Records"])
        state["keys"] = state.get("keys", []) + [
            r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        sqs.send_message(QueueUrl=os.environ["SINK"], MessageBody=json.dumps({
            "window": event["window"], "final": event["isFinalInvokeForWindow"],
            "received": event["state"], "shard": event["shardId"],
            "source": event["eventSourceARN"], "records": len(event["Records"])}))
        return {"state": state, "batchItemFailures": []}
    """
)


def test_tumbling_windows_carry_state_and_end_with_a_final_invoke(module_lab, zip_functions):
    ddb, sqs, lam = (module_lab.client(s) for s in ("dynamodb", "sqs", "lambda"))
    table = ddb.create_table(
        TableName=unique("pytest-windows"),
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )["TableDescription"]
    sink = sqs.create_queue(QueueName=unique("pytest-windows"))["QueueUrl"]
    function = zip_functions.create(
        {"app.py": WINDOWED}, "app.handler", Environment={"Variables": {"SINK": sink}}
    )["FunctionName"]
    try:
        mapping = lam.create_event_source_mapping(
            EventSourceArn=table["LatestStreamArn"],
            FunctionName=function,
            StartingPosition="TRIM_HORIZON",
            BatchSize=2,
            TumblingWindowInSeconds=3,
        )
        assert mapping["TumblingWindowInSeconds"] == 3
        for n in range(5):
            ddb.put_item(TableName=table["TableName"], Item={"pk": {"S": f"w{n}"}})
        s = Setup(module_lab, table["TableName"], table["LatestStreamArn"], function, sink, sink)
        calls = Collector(s).until(
            lambda got: sum(c["received"].get("count", 0) for c in got if c["final"]) >= 5,
            "final invocations covering the 5 records",
        )
        finals = [c for c in calls if c["final"]]
        assert all(c["records"] == 0 for c in finals)
        assert sorted(k for c in finals for k in c["received"]["keys"]) == [
            f"w{n}" for n in range(5)
        ]
        for call in calls:
            start, end = (dt.datetime.fromisoformat(call["window"][k]) for k in ("start", "end"))
            assert (end - start).total_seconds() == 3 and start.timestamp() % 3 == 0
            assert call["shard"].startswith("shardId-") and call["source"] == s.stream_arn
        first_window = [c for c in calls if c["window"] == calls[0]["window"]]
        counts = [c["received"].get("count", 0) for c in first_window]
        assert counts == sorted(counts) and counts[0] == 0  # state carried call to call
    finally:
        for m in lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]:
            lam.delete_event_source_mapping(UUID=m["UUID"])
        ddb.delete_table(TableName=table["TableName"])
        sqs.delete_queue(QueueUrl=sink)
