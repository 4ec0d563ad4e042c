"""The RDS Data API, served on the local Aurora clusters' MariaDB servers."""

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
