"""ECS tasks on Fargate: the cluster, the task network, run-and-wait, lifecycle and logs.

A run-to-completion task is the pattern: `run_task` starts one task in the default VPC,
`wait_for_task` follows its `lastStatus` until STOPPED and returns exit codes and the
lifecycle timestamps, `task_logs` reads what it printed (the `awslogs` driver writes to
`/ecs/<family>` in the stream `<prefix>/<container>/<task-id>`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd
from botocore.exceptions import ClientError

from .. import naming
from ..costs import Price
from ..ec2 import ensure_security_group
from ..lab import Lab
from ..waiting import wait_for

T = TypeVar("T")

TASK_KIND = "ecs task"
CLUSTER_KIND = "ecs cluster"
SECURITY_GROUP_KIND = "ecs task security group"
TASK_SG_NAME = "task-sg"

TIMESTAMP_FIELDS = (
    "createdAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "stoppedAt",
)
# Lifecycle phases as (phase, from timestamp, to timestamp), for lifecycle_frame.
PHASES = (
    ("provisioning", "createdAt", "pullStartedAt"),
    ("pulling image", "pullStartedAt", "pullStoppedAt"),
    ("starting", "pullStoppedAt", "startedAt"),
    ("running", "startedAt", "stoppingAt"),
    ("stopping", "stoppingAt", "stoppedAt"),
)


@dataclass(frozen=True)
class TaskResult:
    """A stopped task as a notebook reads it: status, exit codes, reasons, timestamps."""

    task_arn: str
    task_id: str
    last_status: str
    exit_codes: dict[str, int | None]  # container name -> exit code (None if it never ran)
    stop_code: str | None
    stopped_reason: str | None
    timestamps: dict[str, datetime | None]
    statuses_seen: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int | None:
        """The exit code of the only (or first) container."""
        return next(iter(self.exit_codes.values()), None)


def ensure_cluster(lab: Lab, pattern: str, name: str) -> dict[str, Any]:
    """Get or create a Fargate-only cluster (FARGATE default, FARGATE_SPOT allowed), tagged."""
    cluster_name = lab.name(pattern, name, 255)
    client = lab.client("ecs")
    found = client.describe_clusters(clusters=[cluster_name])["clusters"]
    if found and found[0]["status"] == "ACTIVE":
        return found[0]
    cluster = while_roles_propagate(
        lambda: client.create_cluster(
            clusterName=cluster_name,
            capacityProviders=["FARGATE", "FARGATE_SPOT"],
            defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
            # Container Insights adds per-task metrics but is billed as custom metrics and logs.
            settings=[{"name": "containerInsights", "value": "disabled"}],
            tags=naming.tag_list(lab.tags(pattern), "key", "value"),
        ),
        what="ECS's service-linked role (created by the first cluster of an account)",
    )["cluster"]
    lab.ledger.record(CLUSTER_KIND, cluster_name, pattern)
    return cluster


def while_roles_propagate(call: Callable[[], T], what: str, timeout: float = 90) -> T:
    """`call()`, retried while ECS cannot assume a role yet: IAM takes seconds to propagate.

    AWS answers InvalidParameterException "Unable to assume the service linked role" to an
    account's first cluster (ECS creates the role during that call) and "ECS was unable to
    assume the role" to a task whose roles were created moments ago.
    """

    def attempt() -> T | None:
        try:
            return call()
        except ClientError as error:
            details = error.response.get("Error", {})
            message = details.get("Message", "").lower()
            if details.get("Code") != "InvalidParameterException" or "assume" not in message:
                raise
            return None

    return wait_for(
        attempt,
        what=what,
        timeout=timeout,
        estimate=10,
        interval=2,
        hint="If this lasts, check the role's trust policy (helpers.iam.ensure_role).",
    )


def default_subnets(lab: Lab) -> tuple[str, list[str]]:
    """The default VPC's id and its default (public) subnets, one per availability zone."""
    ec2 = lab.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise RuntimeError("this region has no default VPC: the course's ECS patterns need one")
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    return vpc_id, sorted(s["SubnetId"] for s in subnets)


def ensure_task_security_group(lab: Lab, pattern: str, vpc_id: str) -> str:
    """Get or create the tasks' security group: no ingress at all, default all-outbound egress."""
    return ensure_security_group(
        lab,
        pattern,
        TASK_SG_NAME,
        vpc_id,
        description=f"Course pattern {pattern}: ECS tasks, no inbound traffic",
        ledger_kind=SECURITY_GROUP_KIND,
    )["GroupId"]


def run_task(
    lab: Lab,
    cluster: str,
    task_definition_arn: str,
    *,
    overrides: dict[str, Any] | None = None,
) -> str:
    """Start one Fargate task in the default VPC's public subnets; return its ARN."""
    parts = naming.parse_name(cluster.rsplit("/", 1)[-1])
    if parts is None:
        raise ValueError(f"{cluster!r} is not a course cluster (make it with ensure_cluster)")
    vpc_id, subnets = default_subnets(lab)
    group_id = ensure_task_security_group(lab, parts.pattern, vpc_id)
    response = while_roles_propagate(
        lambda: lab.client("ecs").run_task(
            cluster=cluster,
            taskDefinition=task_definition_arn,
            launchType="FARGATE",
            count=1,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": subnets,
                    "securityGroups": [group_id],
                    # Default subnets are public and have no NAT gateway: without a public IP
                    # the task cannot reach ECR (or CloudWatch Logs) and fails with
                    # CannotPullContainerError. Inbound traffic stays blocked by the group.
                    "assignPublicIp": "ENABLED",
                }
            },
            overrides=overrides or {},
            tags=naming.tag_list(lab.tags(parts.pattern), "key", "value"),
        ),
        what="the task's IAM roles reaching ECS",
    )
    if response.get("failures") or not response.get("tasks"):
        raise RuntimeError(f"ECS did not start the task: {response.get('failures')}")
    task_arn = response["tasks"][0]["taskArn"]
    lab.ledger.record(TASK_KIND, task_arn, parts.pattern)
    return task_arn


def task_result(task: dict[str, Any], statuses_seen: Sequence[str] = ()) -> TaskResult:
    """A describe_tasks entry as a TaskResult."""
    task_arn = task["taskArn"]
    return TaskResult(
        task_arn=task_arn,
        task_id=task_arn.rsplit("/", 1)[-1],
        last_status=task.get("lastStatus", ""),
        exit_codes={c["name"]: c.get("exitCode") for c in task.get("containers", [])},
        stop_code=task.get("stopCode"),
        stopped_reason=task.get("stoppedReason"),
        timestamps={key: task.get(key) for key in TIMESTAMP_FIELDS},
        statuses_seen=list(statuses_seen),
    )


def wait_for_task(lab: Lab, cluster: str, task_arn: str, *, timeout: float = 600) -> TaskResult:
    """Poll describe_tasks until the task is STOPPED; return what happened to it."""
    client = lab.client("ecs")
    seen: list[str] = []

    def check() -> TaskResult | None:
        tasks = client.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"]
        if not tasks:
            raise LookupError(f"task {task_arn} not found in cluster {cluster}")
        status = tasks[0].get("lastStatus", "")
        if not seen or seen[-1] != status:
            seen.append(status)
        return task_result(tasks[0], seen) if status == "STOPPED" else None

    return wait_for(
        check,
        what=f"task {task_arn.rsplit('/', 1)[-1][:8]}",
        timeout=timeout,
        pace=lab.pace.task_stopped,
        hint="Re-run this cell to keep waiting; the task keeps running meanwhile.",
    )


def lifecycle_frame(result: TaskResult) -> pd.DataFrame:
    """The task's phases (provisioning, pulling image, ...) with start, end and seconds."""
    rows = []
    for phase, start_key, end_key in PHASES:
        start, end = result.timestamps.get(start_key), result.timestamps.get(end_key)
        if end_key == "stoppingAt" and end is None:
            end = result.timestamps.get("stoppedAt")
        seconds = (end - start).total_seconds() if start is not None and end is not None else None
        rows.append({"phase": phase, "start": start, "end": end, "seconds": seconds})
    return pd.DataFrame(rows, columns=["phase", "start", "end", "seconds"])


def task_logs(
    lab: Lab, log_group: str, stream_prefix: str, container_name: str, task_id: str
) -> list[str]:
    """The task's log lines from `<prefix>/<container>/<task-id>` ([] if not there yet)."""
    client = lab.client("logs")
    stream = f"{stream_prefix}/{container_name}/{task_id}"
    lines: list[str] = []
    token: str | None = None
    try:
        while True:
            extra = {"nextToken": token} if token else {}
            page = client.get_log_events(
                logGroupName=log_group, logStreamName=stream, startFromHead=True, **extra
            )
            lines.extend(event["message"].rstrip("\n") for event in page["events"])
            if not page["events"] or page.get("nextForwardToken") == token:
                return lines
            token = page.get("nextForwardToken")
    except client.exceptions.ResourceNotFoundException:
        return lines


# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "fargate_vcpu_hour": Price(0.04048, "vCPU-hour", "Linux/x86, per second, 1 min minimum"),
    "fargate_gb_hour": Price(0.004445, "GB-hour", "Linux/x86"),
}
