"""DynamoDB items through moto's handler in-process; writes feed the local cloud's streams.

moto stores every table and item. This provider serves the item operations and the table
operations that change a stream (CreateTable, UpdateTable, DeleteTable). Item reads and writes
(GetItem, BatchGetItem, Query, Scan, TransactGetItems, PutItem, UpdateItem, DeleteItem,
BatchWriteItem, TransactWriteItems) are answered by moto's own DynamoDB handler in-process
(`MotoGateway.dynamodb_item`), skipping moto's HTTP dispatch and serializer, the larger part
of a call's time; moto's validation, conditions, ConsumedCapacity and errors are unchanged.
For a table whose StreamSpecification is enabled, each write appends a record per changed item
to the stream store with the item before and after the write, as DynamoDB Streams does
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html): INSERT,
MODIFY or REMOVE; no record for a write that changes nothing or fails.

Where the local cloud differs from AWS:
- Writes to a table with a stream are serialised per table, and the item before and after a
  write is read from moto with extra GetItem calls, so such writes are slower than plain ones.
- TTL deletions are not made, so no record has the TTL `userIdentity`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..context import CloudContext
from ..dynamodbstreams import DynamoDBStreamsProvider
from ..dynamodbstreams.store import Item, Stream, StreamStore
from ..protocols import ServiceError
from ..registry import Provider, RequestContext

_ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
)


@dataclass
class _Table:
    """What a write needs to know of its table: its key and its stream, if any."""

    key_names: list[str]
    stream: Stream | None
    lock: threading.Lock


class DynamoDBProvider(Provider):
    """Passes writes to moto and records their item changes in the table's stream."""

    service = "dynamodb"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self._tables: dict[tuple[str, str], _Table] = {}
        self._lock = threading.Lock()

    @property
    def store(self) -> StreamStore:
        return self.cloud.providers.get(DynamoDBStreamsProvider).store

    # ----- tables -----------------------------------------------------------------------

    def CreateTable(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto creates the table, ACTIVE at once; its stream, if specified, opens here."""
        answer = self._moto("CreateTable", params, context)
        self._forget(params["TableName"], context)
        self._drop_moto_stream(params["TableName"], context)
        self._open_stream(answer["TableDescription"], context)
        return answer

    def UpdateTable(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """A stream turned on opens; one turned off stops taking records."""
        before = self._table(params["TableName"], context).stream
        spec = params.get("StreamSpecification")
        if spec is not None and spec.get("StreamEnabled") and before is not None:
            raise ServiceError(  # moto: ResourceInUseException "Cannot enable stream"
                "ValidationException",
                f"Table already has an enabled stream: TableName: {params['TableName']}",
            )
        answer = self._moto("UpdateTable", params, context)
        self._forget(params["TableName"], context)
        self._drop_moto_stream(params["TableName"], context)
        if spec is not None and not spec.get("StreamEnabled") and before is not None:
            self.store.disable(before.arn)
        self._open_stream(answer["TableDescription"], context)
        return answer

    def DeleteTable(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Gone at once (moto answers ACTIVE, not DELETING); its stream stays readable 24 h."""
        stream = self._table(params["TableName"], context).stream
        answer = self._moto("DeleteTable", params, context)
        self._forget(params["TableName"], context)
        if stream is not None:
            self.store.disable(stream.arn)
        return answer

    # ----- reads ------------------------------------------------------------------------

    def GetItem(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's answer, without its HTTP stack."""
        return self._moto("GetItem", params, context)

    def BatchGetItem(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's answer, without its HTTP stack."""
        return self._moto("BatchGetItem", params, context)

    def Query(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's answer, without its HTTP stack."""
        return self._moto("Query", params, context)

    def Scan(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's answer, without its HTTP stack."""
        return self._moto("Scan", params, context)

    def TransactGetItems(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's answer, without its HTTP stack."""
        return self._moto("TransactGetItems", params, context)

    # ----- writes -----------------------------------------------------------------------

    def PutItem(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Put, and record the change (ReturnValues ALL_OLD gives the item before)."""
        table = self._table(params["TableName"], context)
        if table.stream is None:
            return self._moto("PutItem", params, context)
        with table.lock:
            asked = params.get("ReturnValues") or "NONE"
            answer = self._moto("PutItem", {**params, "ReturnValues": "ALL_OLD"}, context)
            old = answer.get("Attributes")
            self.store.append(table.stream, old, params["Item"])
            if asked == "NONE":
                answer.pop("Attributes", None)
            return answer

    def DeleteItem(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Delete, and record the removal of an item that was there."""
        table = self._table(params["TableName"], context)
        if table.stream is None:
            return self._moto("DeleteItem", params, context)
        with table.lock:
            asked = params.get("ReturnValues") or "NONE"
            answer = self._moto("DeleteItem", {**params, "ReturnValues": "ALL_OLD"}, context)
            old = answer.get("Attributes")
            if old is not None:
                self.store.append(table.stream, old, None)
            if asked == "NONE":
                answer.pop("Attributes", None)
            return answer

    def UpdateItem(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Update, and record the item before and after."""
        table = self._table(params["TableName"], context)
        if table.stream is None:
            return self._moto("UpdateItem", params, context)
        with table.lock:
            old = self._get(params["TableName"], params["Key"], context)
            answer = self._moto("UpdateItem", params, context)
            new = self._get(params["TableName"], params["Key"], context)
            self.store.append(table.stream, old, new)
            return answer

    def BatchWriteItem(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Write the batch, and record each processed change."""
        requests = params["RequestItems"]
        tables = {name: self._table(name, context) for name in requests}
        streamed = {name: t for name, t in tables.items() if t.stream is not None}
        if not streamed:
            return self._moto("BatchWriteItem", params, context)
        locks = [streamed[name].lock for name in sorted(streamed)]
        for lock in locks:
            lock.acquire()
        try:
            before = {
                (name, i): self._get(name, _request_key(request, streamed[name]), context)
                for name in streamed
                for i, request in enumerate(requests[name])
            }
            answer = self._moto("BatchWriteItem", params, context)
            unprocessed = answer.get("UnprocessedItems") or {}
            for name, table in streamed.items():
                assert table.stream is not None
                changes = [
                    (before[name, i], request.get("PutRequest", {}).get("Item"))
                    for i, request in enumerate(requests[name])
                    if request not in unprocessed.get(name, [])
                ]
                self.store.append_many(table.stream, changes)
            return answer
        finally:
            for lock in reversed(locks):
                lock.release()

    def TransactWriteItems(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Run the transaction; when it commits, record each Put, Update and Delete."""
        writes: list[tuple[str, str, dict[str, Any]]] = []
        for entry in params["TransactItems"]:
            kind, action = next(iter(entry.items()))
            if kind != "ConditionCheck":
                writes.append((kind, action["TableName"], action))
        tables = {name: self._table(name, context) for _, name, _ in writes}
        streamed = {name: t for name, t in tables.items() if t.stream is not None}
        if not streamed:
            return self._moto("TransactWriteItems", params, context)
        locks = [streamed[name].lock for name in sorted(streamed)]
        for lock in locks:
            lock.acquire()
        try:
            keys = [
                (kind, name, _action_key(kind, action, tables[name]))
                for kind, name, action in writes
            ]
            before = [
                self._get(name, key, context) if name in streamed else None for _, name, key in keys
            ]
            answer = self._moto("TransactWriteItems", params, context)
            for name, table in streamed.items():
                assert table.stream is not None
                changes = [
                    (old, self._get(name, key, context))
                    for (_kind, table_name, key), old in zip(keys, before, strict=True)
                    if table_name == name
                ]
                self.store.append_many(table.stream, changes)
            return answer
        finally:
            for lock in reversed(locks):
                lock.release()

    def reset(self) -> None:
        """Forget the tables (moto's reset removed them)."""
        with self._lock:
            self._tables.clear()

    # ----- helpers ----------------------------------------------------------------------

    def _moto(self, operation: str, params: dict[str, Any], context: RequestContext) -> Any:
        if operation in _ITEM_OPERATIONS:  # moto's handler in-process: no HTTP round trip
            return self.cloud.moto.dynamodb_item(
                operation, params, context.account_id, context.region
            )
        return self.cloud.moto.call("dynamodb", operation, params, context.region)

    def _get(self, table: str, key: Item, context: RequestContext) -> Item | None:
        """The item as moto has it now, or None."""
        found = self._moto(
            "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}, context
        )
        return found.get("Item")

    def _table(self, name: str, context: RequestContext) -> _Table:
        """The table's key and stream, read from moto once and cached until it changes."""
        cache_key = (context.region, _table_name(name))
        with self._lock:
            table = self._tables.get(cache_key)
        if table is not None:
            return table
        described = self._moto("DescribeTable", {"TableName": name}, context)["Table"]
        stream = self._open_stream(described, context)
        table = _Table(
            key_names=[k["AttributeName"] for k in described["KeySchema"]],
            stream=stream,
            lock=threading.Lock(),
        )
        with self._lock:
            return self._tables.setdefault(cache_key, table)

    def _drop_moto_stream(self, name: str, context: RequestContext) -> None:
        """Stop moto keeping a stream copy of its own: it would grow without bound, and moto
        fails every write to a table whose stream was turned off. moto still reports the
        stream's ARN and label, which the local stream uses."""
        with self.cloud.moto.backend("dynamodb", context.account_id, context.region) as backend:
            table = backend.tables.get(_table_name(name))
            if table is not None:
                table.stream_shard = None

    def _forget(self, name: str, context: RequestContext) -> None:
        with self._lock:
            self._tables.pop((context.region, _table_name(name)), None)

    def _open_stream(self, description: dict[str, Any], context: RequestContext) -> Stream | None:
        """The table's enabled stream in the store (opened if new), or None."""
        spec = description.get("StreamSpecification") or {}
        if not spec.get("StreamEnabled") or not description.get("LatestStreamArn"):
            return None
        return self.store.open(
            description["LatestStreamArn"],
            description["TableName"],
            context.region,
            context.account_id,
            spec["StreamViewType"],
            description["KeySchema"],
        )


def _table_name(name: str) -> str:
    """A table's name from its name or ARN."""
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def _request_key(request: dict[str, Any], table: _Table) -> Item:
    if "PutRequest" in request:
        item = request["PutRequest"]["Item"]
        return {name: item[name] for name in table.key_names}
    return request["DeleteRequest"]["Key"]


def _action_key(kind: str, action: dict[str, Any], table: _Table) -> Item:
    if kind == "Put":
        return {name: action["Item"][name] for name in table.key_names}
    return action["Key"]
