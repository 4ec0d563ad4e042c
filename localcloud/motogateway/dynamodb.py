"""DynamoDB item operations answered by moto's own handler methods, without its HTTP stack.

A GetItem through moto's WSGI app spent four fifths of its time outside DynamoDB: Flask's
dispatch, moto's request normalisation and its model-driven response serializer. The item
operations take parameters already parsed from the botocore model (as moto's parser would
give them: blobs as bytes) and return the result dict that moto would have serialised, so
moto's validation, conditions, ConsumedCapacity and errors stay exactly moto's.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from ..protocols import ServiceError

# The operations served this way: each returns a plain dict (items, keys, counts, capacity).
ITEM_OPERATIONS = {
    "GetItem": "get_item",
    "BatchGetItem": "batch_get_item",
    "Query": "query",
    "Scan": "scan",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "BatchWriteItem": "batch_write_item",
    "TransactGetItems": "transact_get_items",
    "TransactWriteItems": "transact_write_items",
}


def item_operation(operation: str, params: dict[str, Any], account: str, region: str) -> Any:
    """moto's answer to one item operation (call under the moto lock); errors as ServiceError."""
    from moto.core.exceptions import JsonRESTError, ServiceException
    from moto.dynamodb.responses import DynamoHandler

    handler = DynamoHandler()
    handler.current_account, handler.region = account, region
    # What moto's dispatch sets before an action: the parsed parameters (self.body is what
    # the DynamoDB actions read) and no URI parameters (JSON protocol).
    handler.params = handler.body = params
    handler.uri_match = {}
    try:
        return getattr(handler, ITEM_OPERATIONS[operation])().result
    except JsonRESTError as error:
        raise _service_error(error) from None
    except ServiceException as error:  # moto's newer style: code and message only
        raise ServiceError(error.code, error.message) from None


def _service_error(error: Any) -> ServiceError:
    """A moto DynamoDB error with AWS's code, status and extra members (Item, reasons)."""
    code = error.error_type.split("#")[-1]
    extra: dict[str, Any] = {}
    with contextlib.suppress(TypeError, ValueError):  # a description that is not JSON
        extra = json.loads(error.description)
    fields = {k: v for k, v in extra.items() if k not in ("__type", "message", "Message")}
    status = error.code if isinstance(error.code, int) else 400
    return ServiceError(code, error.message, status, sender_fault=status < 500, fields=fields)
