"""ECS on Fargate for the course: cluster, execution role, task definitions, run-and-wait, teardown.

A run-to-completion task is the pattern: `run_task` starts one task in the default VPC,
`wait_for_task` follows its `lastStatus` until STOPPED and returns exit codes and the
lifecycle timestamps, `task_logs` reads what it printed (the `awslogs` driver writes to
`/ecs/<family>` in the stream `<prefix>/<container>/<task-id>`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from .. import iam, naming
from ..ec2 import ensure_security_group
from ..lab import Lab
from ..waiting import wait_for

TASK_KIND = "ecs task"
TASK_DEFINITION_KIND = "ecs task definition"
CLUSTER_KIND = "ecs cluster"
SECURITY_GROUP_KIND = "ecs task security group"
TASK_SG_NAME = "task-sg"

# Fargate's valid task sizes: cpu units -> allowed memory (MiB). 1024 units = 1 vCPU.
FARGATE_SIZES: dict[str, tuple[int, ...]] = {
    "256": (512, 1024, 2048),
    "512": tuple(range(1024, 4096 + 1, 1024)),
    "1024": tuple(range(2048, 8192 + 1, 1024)),
    "2048": tuple(range(4096, 16384 + 1, 1024)),
    "4096": tuple(range(8192, 30720 + 1, 1024)),
    "8192": tuple(range(16384, 61440 + 1, 4096)),
    "16384": tuple(range(32768, 122880 + 1, 8192)),
}
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
    cluster = client.create_cluster(
        clusterName=cluster_name,
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
        # Container Insights adds per-task metrics but is billed as custom metrics and logs.
        settings=[{"name": "containerInsights", "value": "disabled"}],
        tags=naming.tag_list(lab.tags(pattern), "key", "value"),
    )["cluster"]
    lab.ledger.record(CLUSTER_KIND, cluster_name, pattern)
    return cluster


def log_group_name(lab: Lab, pattern: str, name: str) -> str:
    """The course's log group for a task family: `/ecs/<course name>` (teardown finds it)."""
    return f"/ecs/{lab.name(pattern, name)}"


def execution_role_statements(
    lab: Lab, *, log_group: str, repository_arn: str, secret_arns: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Least privilege for ECS to pull one image, write one log group and read given secrets."""
    group_arn = f"arn:aws:logs:{lab.region}:{lab.account_id}:log-group:{log_group}:*"
    statements: list[dict[str, Any]] = [
        # GetAuthorizationToken has no resource-level permissions: "*" is the only option.
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "PullOneRepository",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": repository_arn,
        },
        {
            "Sid": "OwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": group_arn,
        },
    ]
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadGivenSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": list(secret_arns),
            }
        )
    return statements


def task_execution_role(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    log_group: str,
    repository_arn: str,
    secret_arns: Sequence[str] = (),
) -> dict[str, Any]:
    """Get or create the role ECS uses to start the task (pull, log, secrets), least privilege."""
    statements = execution_role_statements(
        lab, log_group=log_group, repository_arn=repository_arn, secret_arns=secret_arns
    )
    return iam.ensure_role(
        lab, pattern, name, service="ecs-tasks.amazonaws.com", statements=statements
    )


def check_fargate_size(cpu: str | int, memory: str | int) -> tuple[str, str]:
    """Return (cpu, memory) as strings, or raise ValueError naming the field and valid values."""
    cpu_s, memory_s = str(cpu), str(memory)
    if cpu_s not in FARGATE_SIZES:
        raise ValueError(f"cpu={cpu_s!r} is not a Fargate size: use one of {list(FARGATE_SIZES)}")
    allowed = FARGATE_SIZES[cpu_s]
    if not memory_s.isdigit() or int(memory_s) not in allowed:
        shown = [str(m) for m in allowed]
        listed = ", ".join(shown) if len(shown) <= 8 else f"{shown[0]} to {shown[-1]}"
        step = f" in steps of {allowed[1] - allowed[0]}" if len(shown) > 8 else ""
        raise ValueError(
            f"memory={memory_s!r} is not valid with cpu={cpu_s!r} on Fargate: "
            f"use one of {listed}{step} (MiB)"
        )
    return cpu_s, memory_s


def task_definition_request(
    lab: Lab,
    pattern: str,
    family_name: str,
    *,
    image_uri: str,
    container_name: str = "app",
    cpu: str = "256",
    memory: str = "512",
    command: Sequence[str] | None = None,
    environment: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    port: int | None = None,
    execution_role_arn: str,
    task_role_arn: str | None = None,
    log_group: str,
    stream_prefix: str,
    stop_timeout: int | None = None,
) -> dict[str, Any]:
    """The register_task_definition arguments for one Fargate container (no call made)."""
    cpu, memory = check_fargate_size(cpu, memory)
    container: dict[str, Any] = {
        "name": container_name,
        "image": image_uri,
        "essential": True,
        "memory": int(memory),  # moto needs a container-level size; on AWS it equals the task's
        "environment": [{"name": k, "value": v} for k, v in sorted((environment or {}).items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted((secrets or {}).items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": lab.region,
                "awslogs-stream-prefix": stream_prefix,
                "awslogs-create-group": "true",
            },
        },
    }
    if command is not None:
        container["command"] = list(command)
    if port is not None:
        container["portMappings"] = [{"containerPort": port, "protocol": "tcp"}]
    if stop_timeout is not None:
        container["stopTimeout"] = stop_timeout
    request: dict[str, Any] = {
        "family": lab.name(pattern, family_name, 255),
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "cpu": cpu,
        "memory": memory,
        "executionRoleArn": execution_role_arn,
        "containerDefinitions": [container],
        "tags": naming.tag_list(lab.tags(pattern), "key", "value"),
    }
    if task_role_arn:
        request["taskRoleArn"] = task_role_arn
    return request


def comparable(definition: dict[str, Any]) -> dict[str, Any]:
    """The fields that decide whether a new revision is needed, normalised for comparison."""
    containers = []
    for c in definition.get("containerDefinitions", []):
        containers.append(
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "command": list(c.get("command") or []),
                "environment": sorted((e["name"], e["value"]) for e in c.get("environment") or []),
                "secrets": sorted((s["name"], s["valueFrom"]) for s in c.get("secrets") or []),
                "ports": sorted(
                    (p["containerPort"], p.get("protocol", "tcp"))
                    for p in c.get("portMappings") or []
                ),
                "log": (
                    (c.get("logConfiguration") or {}).get("logDriver"),
                    (c.get("logConfiguration") or {}).get("options"),
                ),
                "stopTimeout": c.get("stopTimeout"),
                "memory": c.get("memory"),
            }
        )
    platform = definition.get("runtimePlatform") or {}
    return {
        "cpu": str(definition.get("cpu")),
        "memory": str(definition.get("memory")),
        "networkMode": definition.get("networkMode"),
        "requiresCompatibilities": sorted(definition.get("requiresCompatibilities") or []),
        "platform": (platform.get("operatingSystemFamily"), platform.get("cpuArchitecture")),
        "executionRoleArn": definition.get("executionRoleArn"),
        "taskRoleArn": definition.get("taskRoleArn") or None,
        "containers": containers,
    }


def needs_new_revision(latest: dict[str, Any] | None, request: dict[str, Any]) -> bool:
    """True when there is no active revision or the latest differs from the request."""
    return latest is None or comparable(latest) != comparable(request)


def ensure_task_definition(
    lab: Lab,
    pattern: str,
    family_name: str,
    *,
    image_uri: str,
    container_name: str = "app",
    cpu: str = "256",
    memory: str = "512",
    command: Sequence[str] | None = None,
    environment: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    port: int | None = None,
    execution_role_arn: str,
    task_role_arn: str | None = None,
    log_group: str,
    stream_prefix: str,
    stop_timeout: int | None = None,
) -> dict[str, Any]:
    """Register a Fargate task definition revision only if it differs from the latest active one.

    `secrets` maps an environment variable name to a Secrets Manager ARN (`valueFrom`).
    """
    request = task_definition_request(
        lab,
        pattern,
        family_name,
        image_uri=image_uri,
        container_name=container_name,
        cpu=cpu,
        memory=memory,
        command=command,
        environment=environment,
        secrets=secrets,
        port=port,
        execution_role_arn=execution_role_arn,
        task_role_arn=task_role_arn,
        log_group=log_group,
        stream_prefix=stream_prefix,
        stop_timeout=stop_timeout,
    )
    client = lab.client("ecs")
    try:
        latest = client.describe_task_definition(taskDefinition=request["family"])["taskDefinition"]
    except ClientError as error:  # ClientException: no ACTIVE revision in this family
        if error.response.get("Error", {}).get("Code") != "ClientException":
            raise
        latest = None
    if latest is not None and latest.get("status", "ACTIVE") != "ACTIVE":
        latest = None
    if not needs_new_revision(latest, request):
        return latest
    registered = client.register_task_definition(**request)["taskDefinition"]
    lab.ledger.record(TASK_DEFINITION_KIND, registered["taskDefinitionArn"], pattern)
    return registered


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
    response = lab.client("ecs").run_task(
        cluster=cluster,
        taskDefinition=task_definition_arn,
        launchType="FARGATE",
        count=1,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [group_id],
                # Default subnets are public and have no NAT gateway: without a public IP the
                # task cannot reach ECR (or CloudWatch Logs) and fails with
                # CannotPullContainerError. Inbound traffic stays blocked by the security group.
                "assignPublicIp": "ENABLED",
            }
        },
        overrides=overrides or {},
        tags=naming.tag_list(lab.tags(parts.pattern), "key", "value"),
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
        estimate=5 if lab.is_local else 60,
        interval=0.2 if lab.is_local else 5.0,
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


from . import teardown as _teardown  # noqa: E402,F401 - registers the teardown kinds
from .services import (  # noqa: E402 - services build on the task helpers above
    describe_service,
    ensure_service,
    service_events,
    service_tasks,
    utilisation_frame,
    wait_for_steady_state,
)

__all__ = [
    "describe_service",
    "ensure_service",
    "service_events",
    "service_tasks",
    "utilisation_frame",
    "wait_for_steady_state",
]
