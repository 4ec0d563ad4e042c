"""The local Lambda service: real handler code in warm `awslambdaric` worker processes."""

from ..services import Service
from .provider import LambdaProvider

SERVICE = Service(
    "lambda",
    LambdaProvider,
    operations={
        "AddPermission": "stored; the local API invokes functions without checking it",
        "GetPolicy": "",
        "RemovePermission": "",
        "CreateFunction": "Active at once; an image URI is not checked until the first invoke",
        "GetFunction": "",
        "GetFunctionConfiguration": "",
        "ListFunctions": "",
        "UpdateFunctionCode": "the next invoke starts fresh workers",
        "UpdateFunctionConfiguration": "the next invoke starts fresh workers",
        "Invoke": "",
        "DeleteFunction": "",
        "CreateEventSourceMapping": "DynamoDB streams only (not SQS or Kinesis)",
        "GetEventSourceMapping": "",
        "ListEventSourceMappings": "",
        "UpdateEventSourceMapping": "",
        "DeleteEventSourceMapping": "",
    },
)

__all__ = ["SERVICE", "LambdaProvider"]
