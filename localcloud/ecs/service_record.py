"""A local ECS service's state, and how it shows through AWS's APIs.

`LocalService` and `Deployment` are the scheduler's records; `sync_moto` writes them into
moto's service (runningCount, pendingCount, deployments, events), so that DescribeServices
and the services_stable waiter see the real state. The other functions are the scheduler's
calls to the load balancer and to CloudWatch.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..elbv2.provider import ElbV2Provider
from ..motogateway.app import MOTO_LOCK
from ..registry import RequestContext

if TYPE_CHECKING:
    from .tasks import LocalTask

MAX_EVENTS = 100  # DescribeServices returns at most the 100 newest events


def utc_now() -> dt.datetime:
    """The current UTC time (AWS's timestamps)."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Deployment:
    """One deployment of a service: a task definition and the tasks started for it."""

    id: str
    task_definition: str
    created_at: dt.datetime = field(default_factory=utc_now)
    updated_at: dt.datetime = field(default_factory=utc_now)
    status: str = "PRIMARY"
    rollout_state: str = "IN_PROGRESS"
    failed_tasks: int = 0
    tasks: list[str] = field(default_factory=list)


@dataclass
class Draining:
    """A task the scheduler is stopping: deregistered, stopped when its targets drained."""

    stop_at: float
    reason: str


@dataclass
class LocalService:
    """The scheduler's view of one service."""

    arn: str
    name: str
    cluster_arn: str
    context: RequestContext
    desired_count: int
    launch_type: str
    network_configuration: dict[str, Any]
    load_balancers: list[dict[str, Any]]
    grace_s: float
    propagate_tags: list[dict[str, str]]
    deployments: list[Deployment]
    status: str = "ACTIVE"
    events: list[dict[str, Any]] = field(default_factory=list)
    registered: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    draining: dict[str, Draining] = field(default_factory=dict)
    consecutive_failures: int = 0
    next_start_at: float = 0.0
    steady: bool = False
    counted: set[str] = field(default_factory=set)  # stopped tasks already handled
    synced: Any = None  # what sync_moto last wrote, to skip writing it again

    @property
    def primary(self) -> Deployment:
        """The PRIMARY deployment (the first)."""
        return self.deployments[0]

    def event(self, message: str) -> None:
        """Add a service event, newest first, as DescribeServices lists them."""
        self.events.insert(
            0,
            {
                "id": str(uuid.uuid4()),
                "createdAt": utc_now(),
                "message": f"(service {self.name}) {message}",
            },
        )
        del self.events[MAX_EVENTS:]


def new_deployment_id() -> str:
    """A deployment id in AWS's format (`ecs-svc/` and 19 digits)."""
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"


def counts(tasks: dict[str, LocalTask], arns: list[str]) -> tuple[int, int]:
    """(running, pending) among these tasks."""
    running = pending = 0
    for arn in arns:
        task = tasks.get(arn)
        if task is None:
            continue
        if task.last_status == "RUNNING":
            running += 1
        elif task.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"):
            pending += 1
    return running, pending


def sync_moto(service: LocalService, tasks: dict[str, LocalTask]) -> None:
    """Write the real counts, deployments and events into moto's service record."""
    from moto.ecs.models import ecs_backends

    running, pending = counts(tasks, sorted({a for d in service.deployments for a in d.tasks}))
    deployments = []
    for deployment in service.deployments:
        d_running, d_pending = counts(tasks, deployment.tasks)
        deployments.append(
            {
                "id": deployment.id,
                "status": deployment.status,
                "taskDefinition": deployment.task_definition,
                "desiredCount": service.desired_count if deployment.status == "PRIMARY" else 0,
                "pendingCount": d_pending,
                "runningCount": d_running,
                "failedTasks": deployment.failed_tasks,
                "createdAt": deployment.created_at,
                "updatedAt": deployment.updated_at,
                "launchType": service.launch_type,
                "platformVersion": "1.4.0",
                "platformFamily": "Linux",
                "networkConfiguration": service.network_configuration,
                "rolloutState": deployment.rollout_state,
                "rolloutStateReason": f"ECS deployment {deployment.id} "
                + ("completed." if deployment.rollout_state == "COMPLETED" else "in progress."),
            }
        )
    # Most reconcile passes change nothing: skip moto's lock, which API requests wait on.
    snapshot = (running, pending, service.status, deployments, service.events[:1])
    if snapshot == service.synced:
        return
    service.synced = snapshot
    with MOTO_LOCK:
        backend = ecs_backends[service.context.account_id][service.context.region]
        for record in backend.services.values():
            if record.arn == service.arn:
                record.running_count, record.pending_count = running, pending
                record.desired_count = service.desired_count
                record.deployments = deployments
                record.events = [dict(e) for e in service.events]
                record.status = service.status
                record.task_definition = service.primary.task_definition


def elb_call(cloud: Any, operation: str, params: dict[str, Any], service: LocalService) -> dict:
    """An ELBv2 operation served by the local ALB provider (moto keeps the record)."""
    context = RequestContext(service.context.region, service.context.account_id)
    return getattr(cloud.providers.get(ElbV2Provider), operation)(params, context)


def target_group_state(cloud: Any, group_arn: str) -> Any:
    """The local ALB's live state of a target group (health, settings), or None if it has none.

    The scheduler reads health and the deregistration delay here, several times a second,
    rather than through DescribeTargetHealth, which would be a moto call each time.
    """
    return cloud.providers.get(ElbV2Provider).group(group_arn)


def publish_utilisation(cloud: Any, service: LocalService, tasks: list[LocalTask]) -> None:
    """Publish AWS/ECS CPUUtilization and MemoryUtilization for a service's tasks."""
    samples = [measured for task in tasks if (measured := task.usage()) is not None]
    if not samples:
        return
    dimensions = {
        "ClusterName": service.cluster_arn.rsplit("/", 1)[-1],
        "ServiceName": service.name,
    }
    store = cloud.metrics
    for index, name in enumerate(("CPUUtilization", "MemoryUtilization")):
        store.put(
            "AWS/ECS",
            name,
            values=[sample[index] for sample in samples],
            dimensions=dimensions,
            unit="Percent",
        )
