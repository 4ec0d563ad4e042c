"""Local ElastiCache Serverless: TLS Redis servers in cluster mode, one per serverless cache."""

from ..services import Service
from .provider import ElastiCacheProvider

SERVICE = Service(
    "elasticache",
    ElastiCacheProvider,
    operations={
        "CreateServerlessCache": "",
        "DescribeServerlessCaches": "",
        "ModifyServerlessCache": "",
        "DeleteServerlessCache": "",
        "AddTagsToResource": "",
        "ListTagsForResource": "",
        "RemoveTagsFromResource": "",
    },
)

__all__ = ["SERVICE", "ElastiCacheProvider"]
