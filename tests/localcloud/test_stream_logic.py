"""Pure logic of streams and mappings: record retention, no-op writes, filter patterns."""

from __future__ import annotations

import json
import time

import pytest

from localcloud.dynamodbstreams.store import StreamStore
from localcloud.lambda_.event_sources import filters
from localcloud.protocols import ServiceError

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_records_older_than_the_retention_are_trimmed_and_no_op_changes_kept_out():
    store = StreamStore(retention_seconds=60)
    stream = store.open("arn:stream", "t", "us-east-1", "123456789012", "NEW_IMAGE", KEYS)
    item = {"pk": {"S": "a"}}
    old = store.append(stream, None, item, created=time.time() - 120)
    assert store.append(stream, item, dict(item)) is None  # the same item again: no record
    fresh = store.append(stream, item, None)
    assert old is not None and fresh is not None and fresh.event_name == "REMOVE"
    kept = store.after(stream, 0, 10)
    assert [r.sequence for r in kept] == [fresh.sequence]  # the old record expired
    assert store.trim_horizon(stream) == fresh.sequence - 1
    store.disable("arn:stream")
    assert store.append(stream, None, item) is None  # a disabled stream takes no records


@pytest.mark.parametrize(
    ("pattern", "matching"),
    [
        ({"eventName": ["INSERT", "MODIFY"]}, True),
        ({"eventName": ["REMOVE"]}, False),
        ({"dynamodb": {"NewImage": {"qty": {"N": [{"numeric": [">", 10, "<=", 20]}]}}}}, True),
        ({"dynamodb": {"NewImage": {"qty": {"N": [{"numeric": [">", 20]}]}}}}, False),
        ({"dynamodb": {"NewImage": {"qty": {"N": ["12"]}}}}, True),
        ({"dynamodb": {"NewImage": {"qty": {"N": ["12.0"]}}}}, False),  # numbers by their text
        ({"dynamodb": {"NewImage": {"region": {"S": [{"prefix": "No"}]}}}}, True),
        ({"dynamodb": {"NewImage": {"region": {"S": [{"anything-but": ["North"]}]}}}}, False),
        ({"dynamodb": {"NewImage": {"note": [{"exists": False}]}}}, True),
        ({"dynamodb": {"NewImage": {"region": [{"exists": False}]}}}, False),
        ({"dynamodb": {"OldImage": {"region": {"S": ["North"]}}}}, False),  # INSERT: no old
    ],
)
def test_filter_patterns_match_as_eventbridge_does(pattern, matching):
    record = {
        "eventName": "INSERT",
        "dynamodb": {"NewImage": {"qty": {"N": "12"}, "region": {"S": "North"}}},
    }
    patterns = filters.parse({"Filters": [{"Pattern": json.dumps(pattern)}]})
    assert filters.matches_any(patterns, record) is matching


@pytest.mark.parametrize(
    "text", ["{not json", "[]", '{"eventName": "INSERT"}', '{"a": [{"numeric": [">"]}]}']
)
def test_a_pattern_that_is_not_an_eventbridge_pattern_is_refused(text):
    with pytest.raises(ServiceError, match="Invalid filter pattern definition"):
        filters.parse({"Filters": [{"Pattern": text}]})
