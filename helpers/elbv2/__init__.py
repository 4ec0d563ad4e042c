"""Application Load Balancers for the course: security groups, load balancer, targets, listener.

The helpers live in `load_balancers` (create and converge), `health` (target health and
CloudWatch latency) and `teardown` (the resource kinds); notebooks call
`helpers.elbv2.<name>`.
"""

from .health import (
    HEALTH_COLUMNS,
    LATENCY_COLUMNS,
    NAMESPACE,
    alb_latency_frame,
    metric_dimensions,
    target_health,
    wait_for_alb_metrics,
    wait_for_healthy_targets,
)
from .load_balancers import (
    ALB_SG_NAME,
    ANYWHERE,
    DEREGISTRATION_DELAY_S,
    ELB_NAME_MAX,
    IDLE_TIMEOUT_S,
    INTERVAL_S,
    LISTENER_KIND,
    LOAD_BALANCER_KIND,
    SECURITY_GROUP_KIND,
    TARGET_GROUP_KIND,
    THRESHOLD,
    TIMEOUT_S,
    allow_from_security_group,
    elb_name,
    ensure_alb_security_group,
    ensure_listener,
    ensure_load_balancer,
    ensure_target_group,
    forward_targets,
    load_balancer_name,
)
from .teardown import revoke_references

__all__ = [
    "ALB_SG_NAME",
    "ANYWHERE",
    "DEREGISTRATION_DELAY_S",
    "ELB_NAME_MAX",
    "HEALTH_COLUMNS",
    "IDLE_TIMEOUT_S",
    "INTERVAL_S",
    "LATENCY_COLUMNS",
    "LISTENER_KIND",
    "LOAD_BALANCER_KIND",
    "NAMESPACE",
    "SECURITY_GROUP_KIND",
    "TARGET_GROUP_KIND",
    "THRESHOLD",
    "TIMEOUT_S",
    "alb_latency_frame",
    "allow_from_security_group",
    "elb_name",
    "ensure_alb_security_group",
    "ensure_listener",
    "ensure_load_balancer",
    "ensure_target_group",
    "forward_targets",
    "load_balancer_name",
    "metric_dimensions",
    "revoke_references",
    "target_health",
    "wait_for_alb_metrics",
    "wait_for_healthy_targets",
]
