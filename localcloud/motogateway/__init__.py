"""The local cloud's one way to moto: every read or write of moto's state goes through here.

moto keeps the control plane (IAM, EC2, ECR, Lambda and ECS definitions, ELBv2, API Gateway,
RDS metadata, Secrets Manager, DynamoDB, Logs) inside the daemon's process. Providers reach it
through the `MotoGateway` of their context: `call` runs an operation as boto3 would,
`dynamodb_item` runs a DynamoDB item operation on moto's handler without its HTTP stack,
`backend` hands out one service's backend under the moto lock, and `logs` writes log events.
No other module imports `moto` (an import contract in `make lint` keeps it so).
"""

from .gateway import MotoGateway
from .logs import LogsWriter, MissingLogGroup

__all__ = ["LogsWriter", "MissingLogGroup", "MotoGateway"]
