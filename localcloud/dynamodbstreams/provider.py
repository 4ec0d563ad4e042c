"""The DynamoDB Streams API over the local cloud's own stream store.

ListStreams, DescribeStream, GetShardIterator and GetRecords as on AWS
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Operations_Amazon_DynamoDB_Streams.html):
one shard per stream; iterators TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER and
AFTER_SEQUENCE_NUMBER that expire after 15 minutes (ExpiredIteratorException); GetRecords
returns up to 1,000 records (Limit) and a NextShardIterator; an unknown stream or shard is a
400 ResourceNotFoundException, a sequence number older than the kept records a 400
TrimmedDataAccessException. The records are those Lambda event source mappings deliver,
with the same sequence numbers and event ids.

Where the local cloud differs from AWS:
- A stream has one shard that never splits or closes (AWS rolls shards over about every
  four hours); a disabled stream's shard gets an EndingSequenceNumber.
- moto's own stream is switched off (moto loses its records once an event source mapping
  exists, and keeps them without limit otherwise); moto only names the stream (ARN, label).
- Records are kept 24 hours (LOCALCLOUD_STREAM_RETENTION_SECONDS); nothing of a stream
  survives a restart of the daemon.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from ..context import CloudContext
from ..protocols import ServiceError
from ..registry import Provider, RequestContext
from .store import Stream, StreamStore

ITERATOR_LIFETIME = 15 * 60
MAX_LIMIT = 1000


class DynamoDBStreamsProvider(Provider):
    """The streams API; the store it reads is shared with DynamoDB and Lambda."""

    service = "dynamodbstreams"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.store = StreamStore()

    def ListStreams(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """The streams of the region (of one table when TableName is given)."""
        streams = [
            s
            for s in self.store.streams()
            if s.region == context.region
            and (not params.get("TableName") or s.table_name == params["TableName"])
        ]
        streams.sort(key=lambda s: s.arn)
        start = params.get("ExclusiveStartStreamArn")
        if start:
            streams = [s for s in streams if s.arn > start]
        limit = params.get("Limit") or 100
        page = streams[:limit]
        answer: dict[str, Any] = {
            "Streams": [
                {"StreamArn": s.arn, "TableName": s.table_name, "StreamLabel": s.label}
                for s in page
            ]
        }
        if len(streams) > limit:
            answer["LastEvaluatedStreamArn"] = page[-1].arn
        return answer

    def DescribeStream(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """The stream's settings and its one shard."""
        stream = self._stream(params["StreamArn"])
        sequence_range: dict[str, str] = {
            "StartingSequenceNumber": str(self.store.trim_horizon(stream) + 1)
        }
        if not stream.enabled:
            sequence_range["EndingSequenceNumber"] = str(self.store.last_sequence(stream))
        shards = [{"ShardId": stream.shard_id, "SequenceNumberRange": sequence_range}]
        if params.get("ExclusiveStartShardId") == stream.shard_id:
            shards = []
        return {
            "StreamDescription": {
                "StreamArn": stream.arn,
                "StreamLabel": stream.label,
                "StreamStatus": "ENABLED" if stream.enabled else "DISABLED",
                "StreamViewType": stream.view_type,
                "CreationRequestDateTime": stream.created,
                "TableName": stream.table_name,
                "KeySchema": stream.key_schema,
                "Shards": shards,
            }
        }

    def GetShardIterator(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """An iterator at a position of the shard."""
        stream = self._stream(params["StreamArn"])
        if params["ShardId"] != stream.shard_id:
            raise ServiceError(
                "ResourceNotFoundException",
                f"Requested resource not found: Shard does not exist: {params['ShardId']}",
            )
        kind = params["ShardIteratorType"]
        if kind == "TRIM_HORIZON":
            position = self.store.trim_horizon(stream)
        elif kind == "LATEST":
            position = self.store.last_sequence(stream)
        else:
            if not params.get("SequenceNumber"):
                raise ServiceError(
                    "ValidationException",
                    f"Must provide SequenceNumber for ShardIteratorType {kind}",
                )
            sequence = int(params["SequenceNumber"])
            if sequence <= self.store.trim_horizon(stream) and stream.records:
                raise ServiceError(
                    "TrimmedDataAccessException",
                    f"Sequence number {sequence} is beyond the trim horizon of the shard",
                )
            position = sequence - 1 if kind == "AT_SEQUENCE_NUMBER" else sequence
        return {"ShardIterator": _iterator(stream, position)}

    def GetRecords(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Records after the iterator's position, and the iterator for the next call."""
        arn, position, issued = _read_iterator(params["ShardIterator"])
        if time.time() - issued > ITERATOR_LIFETIME:
            raise ServiceError(
                "ExpiredIteratorException",
                "Iterator expired. The iterator was created at time "
                f"{time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime(issued))}",
            )
        stream = self._stream(arn)
        limit = min(params.get("Limit") or MAX_LIMIT, MAX_LIMIT)
        records = self.store.after(stream, position, limit)
        answer: dict[str, Any] = {"Records": [r.api_record(stream.region) for r in records]}
        next_position = records[-1].sequence if records else position
        closed = not stream.enabled and next_position >= self.store.last_sequence(stream)
        if not closed:
            answer["NextShardIterator"] = _iterator(stream, next_position)
        return answer

    def reset(self) -> None:
        """Forget every stream."""
        self.store.clear()

    def status(self) -> dict[str, Any]:
        """Streams and the records they keep."""
        streams = self.store.streams()
        return {"streams": len(streams), "records": sum(len(s.records) for s in streams)}

    def _stream(self, arn: str) -> Stream:
        stream = self.store.get(arn)
        if stream is None:
            raise ServiceError(
                "ResourceNotFoundException",
                f"Requested resource not found: Stream: {arn} not found",
            )
        return stream


def _iterator(stream: Stream, position: int) -> str:
    """An opaque iterator: the stream, the last sequence number read, when it was issued."""
    token = json.dumps([stream.arn, position, int(time.time())]).encode()
    return f"{stream.arn}|1|{base64.urlsafe_b64encode(token).decode()}"


def _read_iterator(iterator: str) -> tuple[str, int, float]:
    try:
        arn, position, issued = json.loads(base64.urlsafe_b64decode(iterator.rsplit("|", 1)[-1]))
        return str(arn), int(position), float(issued)
    except (ValueError, TypeError) as error:
        raise ServiceError("ValidationException", "Invalid ShardIterator") from error
