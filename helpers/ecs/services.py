"""ECS services on Fargate: keep N copies of a task running behind a load balancer.

A service is the long-running counterpart of `run_task`: ECS starts `desired_count` tasks,
registers each in the target group once it runs, replaces tasks that exit or fail the
load balancer's health checks, and reports what it did as service events.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import naming
from ..cloudwatch import Metric, metrics_frame
from ..lab import Lab
from ..waiting import wait_for
from .tasks import default_subnets

SERVICE_KIND = "ecs service"


def ensure_service(
    lab: Lab,
    cluster: str,
    name: str,
    task_definition_arn: str,
    *,
    security_group_id: str,
    desired_count: int = 1,
    target_group_arn: str | None = None,
    container_name: str | None = None,
    container_port: int | None = None,
    grace_period_s: int = 30,
) -> dict[str, Any]:
    """Get or create a Fargate service (optionally behind a target group); update it if changed."""
    if desired_count < 0:
        raise ValueError(f"desired_count must be 0 or more, not {desired_count}")
    balanced = (target_group_arn, container_name, container_port)
    if any(balanced) and not all(balanced):
        raise ValueError(
            "target_group_arn, container_name and container_port go together: give all three "
            "to put the service behind a load balancer, or none"
        )
    parts = naming.parse_name(cluster.rsplit("/", 1)[-1])
    if parts is None:
        raise ValueError(f"{cluster!r} is not a course cluster (make it with ensure_cluster)")
    service_name = lab.name(parts.pattern, name, 255)
    client = lab.client("ecs")
    found = client.describe_services(cluster=cluster, services=[service_name])["services"]
    if any(s["status"] == "DRAINING" for s in found):
        # A deleted service keeps its name until its tasks have stopped: ECS refuses to create
        # it again before ("Creation of service was not idempotent").
        wait_until_inactive(lab, cluster, service_name, hint="Run the cell again to keep waiting.")
        found = []
    current = next((s for s in found if s["status"] == "ACTIVE"), None)
    if current is not None:
        if (
            current["taskDefinition"] != task_definition_arn
            or current["desiredCount"] != desired_count
        ):
            current = client.update_service(
                cluster=cluster,
                service=service_name,
                taskDefinition=task_definition_arn,
                desiredCount=desired_count,
            )["service"]
        return current
    _, subnets = default_subnets(lab)
    request: dict[str, Any] = {
        "cluster": cluster,
        "serviceName": service_name,
        "taskDefinition": task_definition_arn,
        "desiredCount": desired_count,
        "launchType": "FARGATE",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [security_group_id],
                # Public subnets without a NAT gateway: tasks need a public IP to pull the
                # image and write logs. The security group admits only the load balancer.
                "assignPublicIp": "ENABLED",
            }
        },
        "tags": naming.tag_list(lab.tags(parts.pattern), "key", "value"),
        "propagateTags": "SERVICE",
    }
    if target_group_arn:
        request["loadBalancers"] = [
            {
                "targetGroupArn": target_group_arn,
                "containerName": container_name,
                "containerPort": container_port,
            }
        ]
        request["healthCheckGracePeriodSeconds"] = grace_period_s
    created = client.create_service(**request)["service"]
    lab.ledger.record(SERVICE_KIND, created["serviceArn"], parts.pattern)
    return created


def wait_until_inactive(lab: Lab, cluster: str, service: str, *, hint: str) -> None:
    """Wait while a deleted service drains (its tasks stop) until it is INACTIVE."""
    client = lab.client("ecs")

    def inactive() -> bool:
        found = client.describe_services(cluster=cluster, services=[service])["services"]
        return all(s["status"] == "INACTIVE" for s in found)

    wait_for(
        inactive,
        what=f"service {service.rsplit('/', 1)[-1]} draining",
        timeout=900,
        pace=lab.pace.service_drained,
        hint=f"ECS is stopping the deleted service's tasks. {hint}",
    )


def force_new_deployment(lab: Lab, cluster: str, service: str) -> dict[str, Any]:
    """Replace every task with a new one of the same task definition (a rolling deployment).

    New tasks read their `secrets` again when they start: this is how a service picks up
    a rotated secret. Running tasks keep the values they started with until replaced.
    """
    return lab.client("ecs").update_service(
        cluster=cluster, service=service, forceNewDeployment=True
    )["service"]


def describe_service(lab: Lab, cluster: str, service: str) -> dict[str, Any]:
    """The service as ECS describes it now."""
    found = lab.client("ecs").describe_services(cluster=cluster, services=[service])["services"]
    if not found:
        raise LookupError(f"service {service} not found in cluster {cluster}")
    return found[0]


def wait_for_steady_state(
    lab: Lab, cluster: str, service: str, *, timeout: float = 900
) -> dict[str, Any]:
    """Wait until the service runs desiredCount tasks in one completed deployment."""

    def check() -> dict[str, Any] | None:
        current = describe_service(lab, cluster, service)
        deployments = current.get("deployments", [])
        done = (
            len(deployments) == 1
            and deployments[0].get("rolloutState", "COMPLETED") == "COMPLETED"
            and current["runningCount"] == current["desiredCount"]
            and current.get("pendingCount", 0) == 0
        )
        return current if done else None

    return wait_for(
        check,
        what=f"service {service.rsplit('/', 1)[-1]} steady",
        timeout=timeout,
        pace=lab.pace.service_steady,
        hint="Re-run this cell to keep waiting; `service_events` shows what ECS is doing.",
    )


def service_events(lab: Lab, cluster: str, service: str, limit: int = 12) -> pd.DataFrame:
    """The newest service events, oldest first (what the scheduler did and why)."""
    events = describe_service(lab, cluster, service).get("events", [])[:limit]
    rows = [{"time": e["createdAt"], "message": e["message"]} for e in reversed(events)]
    return pd.DataFrame(rows, columns=["time", "message"])


def wait_for_healthy_tasks(lab: Lab, cluster: str, service: str) -> pd.DataFrame:
    """Wait until every task of the service reports HEALTHY (its containers' healthCheck)."""

    def check() -> tuple[pd.DataFrame] | None:
        tasks = service_tasks(lab, cluster, service)
        rows = [
            {"task": t["taskArn"].rsplit("/", 1)[-1][:8], "health": t.get("healthStatus")}
            for t in tasks
            if t.get("lastStatus") == "RUNNING"
        ]
        healthy = rows and all(row["health"] == "HEALTHY" for row in rows)
        return (pd.DataFrame(rows, columns=["task", "health"]),) if healthy else None

    (frame,) = wait_for(
        check,
        what=f"tasks of {service.rsplit('/', 1)[-1]} HEALTHY",
        timeout=600,
        pace=lab.pace.service_steady,
        hint="A task is UNKNOWN until its first health check passes; see service_events.",
    )
    return frame


def service_tasks(lab: Lab, cluster: str, service: str) -> list[dict[str, Any]]:
    """The service's tasks that are meant to run, as describe_tasks returns them."""
    client = lab.client("ecs")
    arns = client.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
    return client.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def utilisation_frame(
    lab: Lab, cluster_name: str, service_name: str, *, minutes: int = 15, timeout: float = 300
) -> pd.DataFrame:
    """AWS/ECS CPU and memory use of a service (% of the task size) per minute, once published."""
    dimensions = {"ClusterName": cluster_name, "ServiceName": service_name.rsplit("/", 1)[-1]}
    metrics = [
        Metric("AWS/ECS", "CPUUtilization", "Average", dimensions, "CPU % (average)"),
        Metric("AWS/ECS", "CPUUtilization", "Maximum", dimensions, "CPU % (maximum)"),
        Metric("AWS/ECS", "MemoryUtilization", "Average", dimensions, "memory % (average)"),
    ]

    def check() -> tuple[pd.DataFrame] | None:
        frame = metrics_frame(lab, metrics, minutes=minutes).dropna(how="all")
        return (frame.round(2),) if not frame.empty else None  # a tuple is truthy

    (frame,) = wait_for(
        check,
        what="AWS/ECS utilisation metrics",
        timeout=timeout,
        pace=lab.pace.ecs_metrics,
        hint="ECS publishes service metrics once a minute; re-run this cell in a minute.",
    )
    return frame
