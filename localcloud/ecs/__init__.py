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
        "RegisterTaskDefinition": "stored, not validated (e.g. FARGATE with bridge is accepted)",
        "DeregisterTaskDefinition": "",
        "DescribeTaskDefinition": "",
        "ListTaskDefinitions": "",
        "RunTask": "",
        "DescribeTasks": "",
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
