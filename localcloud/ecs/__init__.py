"""The ECS provider: Fargate tasks run as local processes (see provider.py)."""

from ..services import Service
from .provider import EcsProvider

SERVICE = Service(
    "ecs",
    EcsProvider,
    operations={
        "CreateCluster": "ACTIVE at once",
        "DescribeClusters": "",
        "DeleteCluster": "",
        "RegisterTaskDefinition": "Fargate sizes, network mode and health checks checked",
        "DeregisterTaskDefinition": "",
        "DescribeTaskDefinition": "",
        "ListTaskDefinitions": "",
        "RunTask": "",
        "DescribeTasks": "unknown tasks as MISSING failures",
        "ListTasks": "",
        "StopTask": "",
        "CreateService": "",
        "DescribeServices": "",
        "ListServices": "",
        "UpdateService": "",
        "DeleteService": "",
    },
)

__all__ = ["SERVICE", "EcsProvider"]
