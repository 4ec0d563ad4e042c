"""Local RDS: Aurora MySQL clusters on MariaDB and PostgreSQL instances on PostgreSQL."""

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
        "CreateDBInstance": "postgres: a TLS PostgreSQL server of its own, on 5432",
        "DescribeDBInstances": "",
        "DeleteDBInstance": "postgres: the server and its data go",
        "RebootDBInstance": "applies a changed max_connections; the server keeps running",
        "EnableHttpEndpoint": "",
        "DescribeDBEngineVersions": "",
        "ListTagsForResource": "",
    },
)

__all__ = ["SERVICE", "RdsProvider"]
