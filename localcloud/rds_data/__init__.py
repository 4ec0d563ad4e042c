"""The RDS Data API on the local clusters' MariaDB servers (being written)."""

from ..services import Service
from .provider import RdsDataProvider

SERVICE = Service(
    "rds-data",
    RdsDataProvider,
    operations={
        "ExecuteStatement": "",
        "BatchExecuteStatement": "",
        "BeginTransaction": "",
        "CommitTransaction": "",
        "RollbackTransaction": "",
    },
)

__all__ = ["SERVICE", "RdsDataProvider"]
