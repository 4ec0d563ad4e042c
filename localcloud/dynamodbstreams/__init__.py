"""DynamoDB Streams: the local cloud's own stream store and its API."""

from ..services import Service
from .provider import DynamoDBStreamsProvider

SERVICE = Service(
    "dynamodbstreams",
    DynamoDBStreamsProvider,
    operations={
        "ListStreams": "",
        "DescribeStream": "one shard per stream",
        "GetShardIterator": "",
        "GetRecords": "",
    },
)

__all__ = ["SERVICE", "DynamoDBStreamsProvider"]
