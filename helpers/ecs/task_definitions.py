"""ECS task definitions for Fargate: sizes, the execution role, register only what changed.

`ensure_task_definition` registers a new revision only when the request differs from the
latest ACTIVE one (`needs_new_revision`), so re-running a notebook does not pile up
revisions. The `awslogs` driver writes to `/ecs/<family>` (`log_group_name`), which the
log group teardown finds by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from .. import iam, naming
from ..lab import Lab

TASK_DEFINITION_KIND = "ecs task definition"

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


def container_health_check(
    path: str = "/health",
    port: int = 8080,
    *,
    interval_s: int = 10,
    timeout_s: int = 5,
    retries: int = 3,
    start_period_s: int = 15,
) -> dict[str, Any]:
    """A container healthCheck that GETs `path` with Python (slim images have no curl).

    On Fargate this replaces a Dockerfile HEALTHCHECK, which ECS ignores. The command reads
    PORT when set (the local cloud gives each task its own port), else uses `port`.
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    bounds = {"interval_s": (5, 300), "timeout_s": (2, 60), "retries": (1, 10)}
    values = {"interval_s": interval_s, "timeout_s": timeout_s, "retries": retries}
    for field, (low, high) in bounds.items():
        if not low <= values[field] <= high:
            raise ValueError(f"{field} must be {low} to {high}, not {values[field]}")
    if not 0 <= start_period_s <= 300:
        raise ValueError(f"start_period_s must be 0 to 300, not {start_period_s}")
    probe = (
        "import os, urllib.request; urllib.request.urlopen("
        f"'http://localhost:%s{path}' % os.environ.get('PORT', '{port}'), timeout={timeout_s})"
    )
    return {
        "command": ["CMD-SHELL", f'python -c "{probe}" || exit 1'],
        "interval": interval_s,
        "timeout": timeout_s,
        "retries": retries,
        "startPeriod": start_period_s,
    }


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
    health_check: dict[str, Any] | None = None,
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
    if health_check is not None:
        container["healthCheck"] = health_check
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
                "healthCheck": c.get("healthCheck"),
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
    health_check: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register a Fargate task definition revision only if it differs from the latest active one.

    `secrets` maps an environment variable name to a Secrets Manager ARN (`valueFrom`);
    `health_check` is the container's healthCheck (see `container_health_check`).
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
        health_check=health_check,
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
