"""Local RDS Proxy: a pooling MySQL-protocol proxy per DB proxy, in front of Aurora clusters."""

from ..services import Service
from .provider import RdsProxyProvider

SERVICE = Service(
    "rds",
    RdsProxyProvider,
    operations={
        "CreateDBProxy": "",
        "DescribeDBProxies": "",
        "ModifyDBProxy": "",
        "DeleteDBProxy": "",
        "RegisterDBProxyTargets": "",
        "DescribeDBProxyTargets": "",
        "DeregisterDBProxyTargets": "",
        "DescribeDBProxyTargetGroups": "",
        "ModifyDBProxyTargetGroup": "",
    },
)

__all__ = ["SERVICE", "RdsProxyProvider"]
