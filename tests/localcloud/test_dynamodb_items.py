"""DynamoDB item calls answered by moto's handler in-process: AWS's shapes, errors and extras."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import unique

import helpers

ITEM = {
    "pk": {"S": "a"},
    "sk": {"N": "1"},
    "bin": {"B": b"\x00\xff"},
    "doc": {"M": {"list": {"L": [{"N": "1"}, {"SS": ["x"]}]}}},
}


@pytest.fixture(scope="module")
def table(module_lab: helpers.Lab) -> Iterator[tuple[Any, str]]:
    """A table with a hash and a range key, holding ITEM."""
    ddb = module_lab.client("dynamodb")
    name = unique("pytest-items")
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=name, Item=ITEM)
    yield ddb, name
    ddb.delete_table(TableName=name)


def test_reads_return_the_item_with_binary_values_and_consumed_capacity(table):
    ddb, name = table
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    got = ddb.get_item(TableName=name, Key=key, ReturnConsumedCapacity="TOTAL")
    assert got["Item"] == ITEM
    assert got["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": 0.5}
    queried = ddb.query(
        TableName=name,
        KeyConditionExpression="pk = :p AND sk >= :s",
        ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"N": "0"}},
        ProjectionExpression="bin, #d",
        ExpressionAttributeNames={"#d": "doc"},
    )
    assert queried["Items"] == [{"bin": ITEM["bin"], "doc": ITEM["doc"]}]
    assert queried["Count"] == 1
    batch = ddb.batch_get_item(RequestItems={name: {"Keys": [key, {**key, "sk": {"N": "9"}}]}})
    assert batch["Responses"][name] == [ITEM] and batch["UnprocessedKeys"] == {}


def test_a_key_not_matching_the_schema_is_a_validation_error(table):
    ddb, name = table
    with pytest.raises(ClientError) as raised:
        ddb.get_item(TableName=name, Key={"pk": {"S": "a"}})
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as raised:
        ddb.get_item(TableName=unique("pytest-missing"), Key={"pk": {"S": "a"}})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_failed_condition_returns_the_item_when_asked(table):
    """ReturnValuesOnConditionCheckFailure=ALL_OLD: the error carries the item, as on AWS."""
    ddb, name = table
    with pytest.raises(ClientError) as raised:
        ddb.put_item(
            TableName=name,
            Item={"pk": {"S": "a"}, "sk": {"N": "1"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    error = raised.value.response
    assert error["Error"]["Code"] == "ConditionalCheckFailedException"
    assert error["Item"] == ITEM
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})["Item"] == ITEM


def test_a_cancelled_transaction_returns_its_reasons_and_writes_nothing(table):
    ddb, name = table
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "t"}, "sk": {"N": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": name,
                        "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in error["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "t"}, "sk": {"N": "1"}})
