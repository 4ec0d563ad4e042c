"""How fast each backend is: every named wait of the helpers, and the metric periods to read.

AWS takes minutes where the local cloud takes a second, and publishes its own metrics per
minute where the local cloud publishes them per second. Helpers and notebooks ask
`lab.pace` (one of the two `Pacing`s below) instead of branching on the backend, so the
numbers live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wait:
    """One kind of wait on one backend: how long it usually takes and how often to look."""

    estimate: float  # seconds it usually takes: the length of the progress bar
    interval: float  # seconds between two polls
    timeout: float | None = None  # seconds before giving up, for waits that do not set their own


@dataclass(frozen=True)
class Pacing:
    """The waits of one backend, by what is awaited, and the periods to read metrics with."""

    # A delete that AWS refuses while something still holds the resource (ResourceInUse,
    # DependencyViolation, a cluster with stopping tasks).
    resource_released: Wait
    # ECS
    task_stopped: Wait
    service_steady: Wait
    service_drained: Wait  # a deleted service: its tasks stop and it turns INACTIVE
    ecs_metrics: Wait  # AWS/ECS utilisation of a service appears in CloudWatch
    # Application Load Balancers
    load_balancer_active: Wait
    load_balancer_deleted: Wait
    interfaces_released: Wait  # a deleted load balancer's network interfaces go away
    targets_healthy: Wait
    alb_metrics: Wait  # AWS/ApplicationELB request metrics appear in CloudWatch
    # S3
    object_written: Wait
    # Aurora
    aurora_cluster_created: Wait
    aurora_cluster_ready: Wait  # an existing cluster checked, started or modified
    aurora_writer_ready: Wait
    aurora_data_api_enabled: Wait
    aurora_instance_deleted: Wait
    aurora_cluster_deleted: Wait
    aurora_subnet_group_deleted: Wait
    # Seconds per datapoint of the metrics the backend publishes itself (AWS/RDS capacity).
    metric_period: int
    # Seconds per point when a notebook charts a burst of a few seconds.
    chart_period: int


_AURORA_LOCAL = Wait(estimate=10, interval=0.5, timeout=120)


def _aurora_on_aws(estimate: float) -> Wait:
    """An Aurora wait on AWS: minutes, polled every 10 s, given at least half an hour."""
    return Wait(estimate=estimate, interval=10, timeout=max(1800, 3 * estimate))


LOCAL = Pacing(
    resource_released=Wait(estimate=1, interval=0.5),
    task_stopped=Wait(estimate=5, interval=0.2),
    service_steady=Wait(estimate=15, interval=0.5),
    service_drained=Wait(estimate=10, interval=0.5),
    ecs_metrics=Wait(estimate=20, interval=2.0),
    load_balancer_active=Wait(estimate=1, interval=0.5),
    load_balancer_deleted=Wait(estimate=1, interval=0.5),
    interfaces_released=Wait(estimate=1, interval=0.5),
    targets_healthy=Wait(estimate=5, interval=0.5),
    alb_metrics=Wait(estimate=5, interval=1.0),
    object_written=Wait(estimate=2, interval=0.2),
    aurora_cluster_created=_AURORA_LOCAL,
    aurora_cluster_ready=_AURORA_LOCAL,
    aurora_writer_ready=_AURORA_LOCAL,
    aurora_data_api_enabled=_AURORA_LOCAL,
    aurora_instance_deleted=_AURORA_LOCAL,
    aurora_cluster_deleted=_AURORA_LOCAL,
    aurora_subnet_group_deleted=_AURORA_LOCAL,
    metric_period=1,
    chart_period=5,
)

AWS = Pacing(
    resource_released=Wait(estimate=60, interval=10.0),
    task_stopped=Wait(estimate=60, interval=5.0),
    service_steady=Wait(estimate=180, interval=10.0),
    service_drained=Wait(estimate=120, interval=10.0),
    ecs_metrics=Wait(estimate=120, interval=15.0),
    load_balancer_active=Wait(estimate=180, interval=10.0),
    load_balancer_deleted=Wait(estimate=20, interval=10.0),
    interfaces_released=Wait(estimate=120, interval=10.0),
    targets_healthy=Wait(estimate=90, interval=5.0),
    alb_metrics=Wait(estimate=180, interval=20.0),
    object_written=Wait(estimate=60, interval=2.0),
    aurora_cluster_created=_aurora_on_aws(420),  # 5-10 minutes for a new cluster
    aurora_cluster_ready=_aurora_on_aws(60),
    aurora_writer_ready=_aurora_on_aws(480),
    aurora_data_api_enabled=_aurora_on_aws(30),
    aurora_instance_deleted=_aurora_on_aws(420),
    aurora_cluster_deleted=_aurora_on_aws(180),
    aurora_subnet_group_deleted=_aurora_on_aws(30),
    metric_period=60,
    chart_period=60,
)

BY_BACKEND = {"local": LOCAL, "aws": AWS}
