"""The local cloud's DynamoDB streams: one shard per stream, records kept 24 hours.

The DynamoDB provider appends a record for each item change; the streams API and the Lambda
event source mappings read the same records, so both see the same sequence numbers.
Records follow https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html
and their SizeBytes follows DynamoDB's item-size rules
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
"""

from __future__ import annotations

import base64
import math
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

Item = dict[str, dict[str, Any]]  # an item in DynamoDB's typed form: {"pk": {"S": "a"}}

VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
RETENTION_SECONDS = 24 * 3600


@dataclass
class StreamRecord:
    """One item change, as the stream keeps it."""

    sequence: int
    event_id: str
    event_name: str  # INSERT | MODIFY | REMOVE
    created: float  # epoch seconds, when the change was written
    keys: Item
    new_image: Item | None
    old_image: Item | None
    view_type: str
    partition_key: str  # the hash key's value, for ordering lanes

    @property
    def sequence_number(self) -> str:
        """The numeric string AWS uses (21 to 40 digits)."""
        return str(self.sequence)

    def stream_record(self) -> dict[str, Any]:
        """The `dynamodb` member, with the images the view type shows."""
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": float(int(self.created)),
            "Keys": self.keys,
            "SequenceNumber": self.sequence_number,
            "SizeBytes": self.size_bytes(),
            "StreamViewType": self.view_type,
        }
        if self.new_image is not None and self.view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["NewImage"] = self.new_image
        if self.old_image is not None and self.view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["OldImage"] = self.old_image
        return body

    def size_bytes(self) -> int:
        """DynamoDB item size of Keys plus the images the view type shows."""
        return sum(item_size(part) for part in self._shown_parts())

    def _shown_parts(self) -> list[Item]:
        parts = [self.keys]
        if self.new_image is not None and self.view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            parts.append(self.new_image)
        if self.old_image is not None and self.view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            parts.append(self.old_image)
        return parts

    def api_record(self, region: str) -> dict[str, Any]:
        """The record as GetRecords returns it (binary values as bytes)."""
        return {
            "eventID": self.event_id,
            "eventName": self.event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": region,
            "dynamodb": self.stream_record(),
        }

    def lambda_record(self, region: str, stream_arn: str) -> dict[str, Any]:
        """The record as a Lambda event carries it: JSON, binary values base64."""
        record = self.api_record(region)
        record["dynamodb"] = _json_ready(record["dynamodb"])
        record["dynamodb"]["ApproximateCreationDateTime"] = int(self.created)
        record["eventSourceARN"] = stream_arn
        return record


@dataclass
class Stream:
    """One table's stream: its settings and its one shard's records."""

    arn: str
    table_name: str
    region: str
    account_id: str
    view_type: str
    key_schema: list[dict[str, str]]
    created: float = field(default_factory=time.time)
    enabled: bool = True
    shard_id: str = ""
    first_sequence: int = 0
    records: list[StreamRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The timestamp after `/stream/` in the ARN."""
        return self.arn.rsplit("/stream/", 1)[-1]

    @property
    def hash_key(self) -> str:
        return next(k["AttributeName"] for k in self.key_schema if k["KeyType"] == "HASH")


class StreamStore:
    """Every stream of the local cloud, with a condition that wakes readers on new records."""

    def __init__(self, retention_seconds: float | None = None) -> None:
        self.retention = retention_seconds or float(
            os.environ.get("LOCALCLOUD_STREAM_RETENTION_SECONDS", RETENTION_SECONDS)
        )
        self._streams: dict[str, Stream] = {}
        self._sequence = 10**20  # sequence numbers have at least 21 digits
        self.changed = threading.Condition()

    def open(
        self,
        arn: str,
        table_name: str,
        region: str,
        account_id: str,
        view_type: str,
        key_schema: list[dict[str, str]],
    ) -> Stream:
        """The stream with this ARN, created if new; enabled either way (a table's stream
        turned off and on again may keep its ARN in moto)."""
        with self.changed:
            stream = self._streams.get(arn)
            if stream is not None:
                stream.enabled, stream.view_type = True, view_type
            else:
                stream = Stream(arn, table_name, region, account_id, view_type, key_schema)
                stream.shard_id = (
                    f"shardId-{int(stream.created * 1000):020d}-{uuid.uuid4().hex[:8]}"
                )
                stream.first_sequence = self._sequence + 1
                self._streams[arn] = stream
            return stream

    def disable(self, arn: str) -> None:
        """The table's stream stops taking records; readers may still read it for 24 hours."""
        with self.changed:
            if arn in self._streams:
                self._streams[arn].enabled = False

    def get(self, arn: str) -> Stream | None:
        with self.changed:
            return self._streams.get(arn)

    def streams(self) -> list[Stream]:
        with self.changed:
            self._expire()
            return list(self._streams.values())

    def append(
        self, stream: Stream, old: Item | None, new: Item | None, created: float | None = None
    ) -> StreamRecord | None:
        """Record one item change; None for a change that changes nothing."""
        records = self.append_many(stream, [(old, new)], created)
        return records[0] if records else None

    def append_many(
        self,
        stream: Stream,
        changes: list[tuple[Item | None, Item | None]],
        created: float | None = None,
    ) -> list[StreamRecord]:
        """Record the item changes of one request together (readers see all or none)."""
        if not stream.enabled:
            return []
        key_names = [k["AttributeName"] for k in stream.key_schema]
        when = created if created is not None else time.time()
        added: list[StreamRecord] = []
        with self.changed:
            for old, new in changes:
                if old == new:  # a write that changes nothing writes no record
                    continue
                image = new if new is not None else old
                assert image is not None
                self._sequence += 1
                added.append(
                    StreamRecord(
                        sequence=self._sequence,
                        event_id=uuid.uuid4().hex,
                        event_name="INSERT"
                        if old is None
                        else "REMOVE"
                        if new is None
                        else "MODIFY",
                        created=when,
                        keys={name: image[name] for name in key_names if name in image},
                        new_image=new,
                        old_image=old,
                        view_type=stream.view_type,
                        partition_key=repr(sorted(image.get(stream.hash_key, {}).items())),
                    )
                )
            stream.records.extend(added)
            self._expire()
            if added:
                self.changed.notify_all()
        return added

    def after(self, stream: Stream, sequence: int, limit: int) -> list[StreamRecord]:
        """Up to `limit` records with a sequence number above `sequence`, oldest first."""
        with self.changed:
            self._expire()
            records = stream.records
            low, high = 0, len(records)
            while low < high:  # binary search: the records are in sequence order
                middle = (low + high) // 2
                if records[middle].sequence <= sequence:
                    low = middle + 1
                else:
                    high = middle
            return records[low : low + limit]

    def last_sequence(self, stream: Stream) -> int:
        """The newest record's sequence number (or the one before the first, if none)."""
        with self.changed:
            return stream.records[-1].sequence if stream.records else stream.first_sequence - 1

    def trim_horizon(self, stream: Stream) -> int:
        """The sequence number just before the oldest record still kept."""
        with self.changed:
            self._expire()
            return stream.records[0].sequence - 1 if stream.records else self.last_sequence(stream)

    def wait(self, timeout: float) -> None:
        """Sleep until a record is appended anywhere, or `timeout` seconds."""
        with self.changed:
            self.changed.wait(timeout)

    def clear(self) -> None:
        with self.changed:
            self._streams.clear()
            self.changed.notify_all()

    def _expire(self) -> None:
        """Drop records older than the retention period (caller holds the lock)."""
        horizon = time.time() - self.retention
        for arn, stream in list(self._streams.items()):
            cut = 0
            while cut < len(stream.records) and stream.records[cut].created < horizon:
                cut += 1
            if cut:
                del stream.records[:cut]
            if not stream.enabled and not stream.records and stream.created < horizon:
                del self._streams[arn]


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size: each attribute's UTF-8 name length plus its value's size."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value: Mapping[str, Any]) -> int:
    """One typed value's size by DynamoDB's rules."""
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return number_size(content)
    if kind == "B":
        return len(_raw(content))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(number_size(n) for n in content)
    if kind == "BS":
        return sum(len(_raw(b)) for b in content)
    if kind == "L":  # 3 bytes of overhead plus 1 per element
        return 3 + sum(value_size(v) + 1 for v in content)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in content.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def number_size(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one."""
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        return len(text)
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def _raw(blob: bytes | str) -> bytes:
    return blob if isinstance(blob, bytes) else base64.b64decode(blob)


def _json_ready(value: Any) -> Any:
    """Typed values with bytes turned into base64 text, as Lambda events carry them."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value
