"""DynamoDB streams of the local cloud: records for each write kind and view type, the API."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import unique

import helpers
from localcloud.dynamodbstreams.store import item_size, number_size


@pytest.fixture
def tables(module_lab: helpers.Lab) -> Iterator[Any]:
    """A factory of tables with a stream; each is deleted afterwards."""
    ddb = module_lab.client("dynamodb")
    made: list[str] = []

    def create(view_type: str = "NEW_AND_OLD_IMAGES", sort_key: bool = False) -> dict[str, Any]:
        name = unique("pytest-streams")
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
        if sort_key:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attributes.append({"AttributeName": "sk", "AttributeType": "N"})
        table = ddb.create_table(
            TableName=name,
            KeySchema=keys,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
        )["TableDescription"]
        made.append(name)
        return table

    yield create
    for name in made:
        with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
            ddb.delete_table(TableName=name)


def _records(lab: helpers.Lab, stream_arn: str) -> list[dict[str, Any]]:
    """Every record of the stream, from TRIM_HORIZON, through the streams API."""
    streams = lab.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    found: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator)
        found += page["Records"]
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return found


def test_each_write_kind_gives_aws_records_and_no_op_writes_give_none(module_lab, tables):
    table = tables("NEW_AND_OLD_IMAGES", sort_key=True)
    name, ddb = table["TableName"], module_lab.client("dynamodb")
    key = {"pk": {"S": "Fred"}, "sk": {"N": "1"}}
    ddb.put_item(TableName=name, Item={**key, "blob": {"B": b"foobar"}})  # INSERT
    ddb.put_item(TableName=name, Item={**key, "blob": {"B": b"foobar"}})  # no change: none
    ddb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET qty = :q",
        ExpressionAttributeValues={":q": {"N": "42"}},
    )  # MODIFY
    ddb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET qty = :q",
        ExpressionAttributeValues={":q": {"N": "42"}},
    )  # no change: none
    ddb.delete_item(TableName=name, Key=key)  # REMOVE
    ddb.delete_item(TableName=name, Key=key)  # nothing there: none
    ddb.batch_write_item(
        RequestItems={
            name: [
                {"PutRequest": {"Item": {"pk": {"S": "a"}, "sk": {"N": "2"}}}},
                {"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": "3"}}}},
            ]
        }
    )
    ddb.transact_write_items(
        TransactItems=[
            {"Delete": {"TableName": name, "Key": {"pk": {"S": "a"}, "sk": {"N": "2"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "c"}, "sk": {"N": "4"}}}},
        ]
    )
    with pytest.raises(ClientError):  # a failed condition writes nothing
        ddb.put_item(
            TableName=name,
            Item={"pk": {"S": "b"}, "sk": {"N": "3"}},
            ConditionExpression="attribute_not_exists(pk)",
        )

    records = _records(module_lab, table["LatestStreamArn"])
    assert [r["eventName"] for r in records] == [
        "INSERT", "MODIFY", "REMOVE", "INSERT", "INSERT", "REMOVE", "INSERT",
    ]  # fmt: skip
    insert, modify, remove = (r["dynamodb"] for r in records[:3])
    assert records[0]["eventVersion"] == "1.1" and records[0]["eventSource"] == "aws:dynamodb"
    assert insert["Keys"] == key and insert["NewImage"]["blob"] == {"B": b"foobar"}
    assert "OldImage" not in insert and "NewImage" not in remove
    assert modify["OldImage"] == {**key, "blob": {"B": b"foobar"}}
    assert modify["NewImage"]["qty"] == {"N": "42"}
    # SizeBytes: Keys + images by the item-size rules (pk 2+4, sk 2+2, blob 4+6, qty 3+2)
    assert insert["SizeBytes"] == 10 + 20 and remove["SizeBytes"] == 10 + 25
    assert modify["SizeBytes"] == 10 + 25 + 20
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    assert all(len(r["dynamodb"]["SequenceNumber"]) >= 21 for r in records)
    assert all(r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES" for r in records)


@pytest.mark.parametrize(
    ("view_type", "members"),
    [
        ("KEYS_ONLY", set()),
        ("NEW_IMAGE", {"NewImage"}),
        ("OLD_IMAGE", {"OldImage"}),
        ("NEW_AND_OLD_IMAGES", {"NewImage", "OldImage"}),
    ],
)
def test_view_type_decides_which_images_a_record_carries(module_lab, tables, view_type, members):
    table = tables(view_type)
    name, ddb = table["TableName"], module_lab.client("dynamodb")
    ddb.put_item(TableName=name, Item={"pk": {"S": "Fred"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "Fred"}, "name": {"S": "Fred"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "Fred"}})
    insert, modify, remove = (r["dynamodb"] for r in _records(module_lab, table["LatestStreamArn"]))
    images = {"NewImage", "OldImage"}
    assert images & set(modify) == members
    assert images & set(insert) == members - {"OldImage"}
    assert images & set(remove) == members - {"NewImage"}
    # AWS's recorded examples: Keys {pk:"Fred"} = 6 bytes, {pk, name:"Fred"} = 14
    sizes = {"KEYS_ONLY": 6, "NEW_IMAGE": 6 + 14, "OLD_IMAGE": 6 + 6}
    assert modify["SizeBytes"] == sizes.get(view_type, 6 + 14 + 6)


def test_streams_api_lists_describes_and_reads_from_latest(module_lab, tables):
    table = tables("KEYS_ONLY")
    arn, streams = table["LatestStreamArn"], module_lab.client("dynamodbstreams")
    listed = streams.list_streams(TableName=table["TableName"])["Streams"]
    assert listed == [
        {"StreamArn": arn, "TableName": table["TableName"], "StreamLabel": arn.split("/")[-1]}
    ]
    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["StreamStatus"] == "ENABLED" and described["StreamViewType"] == "KEYS_ONLY"
    shard = described["Shards"][0]["ShardId"]
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    module_lab.client("dynamodb").put_item(TableName=table["TableName"], Item={"pk": {"S": "x"}})
    page = streams.get_records(ShardIterator=latest)
    assert [r["dynamodb"]["Keys"] for r in page["Records"]] == [{"pk": {"S": "x"}}]
    first = page["Records"][0]["dynamodb"]["SequenceNumber"]
    at = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=first
    )["ShardIterator"]
    assert len(streams.get_records(ShardIterator=at)["Records"]) == 1
    after = streams.get_shard_iterator(
        StreamArn=arn,
        ShardId=shard,
        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        SequenceNumber=first,
    )["ShardIterator"]
    assert streams.get_records(ShardIterator=after)["Records"] == []

    module_lab.client("dynamodb").delete_table(TableName=table["TableName"])
    gone = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert gone["StreamStatus"] == "DISABLED"
    assert "EndingSequenceNumber" in gone["Shards"][0]["SequenceNumberRange"]
    with pytest.raises(ClientError) as error:
        streams.describe_stream(StreamArn=arn + "0")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_update_table_turns_the_stream_on_and_off(module_lab):
    ddb, name = module_lab.client("dynamodb"), unique("pytest-later")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        ddb.put_item(TableName=name, Item={"pk": {"S": "unstreamed"}})
        arn = ddb.update_table(
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
        )["TableDescription"]["LatestStreamArn"]
        ddb.put_item(TableName=name, Item={"pk": {"S": "streamed"}})
        with pytest.raises(ClientError) as again:  # on already: refused, the stream unchanged
            ddb.update_table(
                TableName=name,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
        assert again.value.response["Error"] == {
            "Code": "ValidationException",
            "Message": f"Table already has an enabled stream: TableName: {name}",
        }
        assert ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"] == arn
        ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
        ddb.put_item(TableName=name, Item={"pk": {"S": "after"}})
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in _records(module_lab, arn)]
        assert keys == ["streamed"]
        described = module_lab.client("dynamodbstreams").describe_stream(StreamArn=arn)
        assert described["StreamDescription"]["StreamStatus"] == "DISABLED"
    finally:
        ddb.delete_table(TableName=name)


def test_item_size_follows_dynamodb_rules():
    assert number_size("42") == 2 and number_size("300") == 2 and number_size("12345") == 4
    assert number_size("0") == 2 and number_size("-1.50") == 2
    assert item_size({"binary_key": {"B": base64.b64decode("Zm9vYmFy")}}) == 16
    assert item_size({"should_fail": {"BOOL": True}}) == 12
    assert item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (2 + 1) + (2 + 1)
