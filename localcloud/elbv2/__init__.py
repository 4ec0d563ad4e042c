"""Local Application Load Balancers: listeners on 127.0.0.1, health checks, routing, metrics."""

from ..services import Service
from .provider import ElbV2Provider

SERVICE = Service(
    "elbv2",
    ElbV2Provider,
    operations={
        "CreateLoadBalancer": "active at once (AWS timing profile: provisioning first)",
        "DescribeLoadBalancers": "",
        "SetSubnets": "",
        "SetSecurityGroups": "",
        "ModifyLoadBalancerAttributes": "",
        "CreateTargetGroup": "",
        "DescribeTargetGroups": "",
        "ModifyTargetGroup": "",
        "DescribeTargetGroupAttributes": "",
        "ModifyTargetGroupAttributes": "",
        "CreateListener": "",
        "DescribeListeners": "",
        "ModifyListener": "",
        "DescribeTargetHealth": "",
        "DeleteLoadBalancer": "",
        "DeleteTargetGroup": "ResourceInUse while a listener uses it",
    },
)

__all__ = ["SERVICE", "ElbV2Provider"]
