"""Local Aurora: each cluster a private MariaDB server (being written)."""

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
