"""The on-failure destination: the invocation record of discarded stream records, to SQS or SNS.

The record's shape is AWS's
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-dynamodb-errors): the
records themselves are not in it, only where they are in the stream.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from ...dynamodbstreams.store import StreamRecord
from ...motogateway import MotoGateway
from ...protocols import ServiceError

log = logging.getLogger("localcloud.lambda.event_sources")


def invocation_record(
    *,
    function_arn: str,
    condition: str,
    invoke_count: int,
    function_error: str | None,
    records: list[StreamRecord],
    shard_id: str,
    stream_arn: str,
) -> dict[str, Any]:
    """What AWS sends to the destination when it discards a batch."""
    record: dict[str, Any] = {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": function_error,
        },
        "version": "1.0",
        "timestamp": _iso(dt.datetime.now(dt.UTC).timestamp()),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _iso(records[0].created),
            "approximateArrivalOfLastRecord": _iso(records[-1].created),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
    if invoke_count == 0:  # discarded for age before any invocation
        del record["responseContext"]
    return record


def send(moto: MotoGateway, destination: str, record: dict[str, Any]) -> bool:
    """Deliver the record to an SQS queue or SNS topic (through moto); False if it failed."""
    service, region, account, name = _parts(destination)
    body = json.dumps(record)
    try:
        if service == "sqs":
            url = moto.call(
                "sqs", "GetQueueUrl", {"QueueName": name, "QueueOwnerAWSAccountId": account}, region
            )["QueueUrl"]
            moto.call("sqs", "SendMessage", {"QueueUrl": url, "MessageBody": body}, region)
        else:
            moto.call("sns", "Publish", {"TopicArn": destination, "Message": body}, region)
    except ServiceError as error:
        log.warning("on-failure destination %s refused the record: %s", destination, error)
        return False
    return True


def check(destination_config: dict[str, Any] | None) -> None:
    """400 for an on-failure destination that is not an SQS queue or SNS topic ARN."""
    destination = ((destination_config or {}).get("OnFailure") or {}).get("Destination")
    if destination is None:
        return
    try:
        service = _parts(destination)[0]
    except ValueError:
        service = ""
    if service not in ("sqs", "sns"):
        raise ServiceError(
            "InvalidParameterValueException",
            "The provided destination config DestinationConfig(onSuccess=null, onFailure="
            f"OnFailure(destination={destination})) is invalid: only an SQS queue or SNS "
            "topic ARN is supported by the local cloud.",
        )


def _parts(arn: str) -> tuple[str, str, str, str]:
    """(service, region, account, resource name) of an ARN."""
    pieces = arn.split(":", 5)
    if len(pieces) != 6 or pieces[0] != "arn":
        raise ValueError(f"not an ARN: {arn}")
    return pieces[2], pieces[3], pieces[4], pieces[5]


def _iso(epoch: float) -> str:
    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
