"""Local Aurora MySQL: each cluster a private MariaDB server; moto keeps the records."""

from ..services import Service
from .provider import RdsProvider

SERVICE = Service(
    "rds",
    RdsProvider,
    operations={
        "CreateDBSubnetGroup": "stored; no VPC placement is enforced",
        "DescribeDBSubnetGroups": "",
        "DeleteDBSubnetGroup": "",
        "CreateDBCluster": "",
        "DescribeDBClusters": "",
        "ModifyDBCluster": "",
        "DeleteDBCluster": "",
        "CreateDBInstance": "",
        "DescribeDBInstances": "",
        "DeleteDBInstance": "",
        "RebootDBInstance": "applies a changed max_connections; the server keeps running",
        "EnableHttpEndpoint": "",
        "DescribeDBEngineVersions": "",
        "ListTagsForResource": "",
    },
)

__all__ = ["SERVICE", "RdsProvider"]
