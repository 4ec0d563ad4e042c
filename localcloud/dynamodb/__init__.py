"""DynamoDB: moto keeps tables and items, its handler answers item calls in-process; writes to
tables with a stream feed the stream store."""

from ..services import Service
from .provider import DynamoDBProvider

SERVICE = Service(
    "dynamodb",
    DynamoDBProvider,
    operations={
        "CreateTable": "ACTIVE at once; waiters return immediately; a StreamSpecification "
        "opens a local stream",
        "UpdateTable": "StreamSpecification turns the local stream on or off",
        "DescribeTable": "",
        "PutItem": "",
        "UpdateItem": "",
        "DeleteItem": "",
        "BatchWriteItem": "",
        "TransactWriteItems": "",
        "GetItem": "",
        "BatchGetItem": "",
        "TransactGetItems": "",
        "Query": "",
        "Scan": "",
        "ListTables": "",
        "ListTagsOfResource": "",
        "DeleteTable": "the response says ACTIVE rather than DELETING; the table is gone at once",
    },
)

__all__ = ["SERVICE", "DynamoDBProvider"]
