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
        "EnableHttpEndpoint": "",
        "DescribeDBEngineVersions": "",
        "ListTagsForResource": "",
    },
)

__all__ = ["SERVICE", "RdsProvider"]
