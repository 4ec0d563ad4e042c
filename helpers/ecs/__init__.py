"""ECS on Fargate for the course: cluster, execution role, task definitions, tasks, services.

The helpers live in `task_definitions`, `tasks` (run-and-wait), `services` (behind a load
balancer) and `teardown` (the resource kinds); notebooks call `helpers.ecs.<name>`.
"""

from .services import (
    SERVICE_KIND,
    describe_service,
    ensure_service,
    service_events,
    service_tasks,
    utilisation_frame,
    wait_for_steady_state,
)
from .task_definitions import (
    FARGATE_SIZES,
    TASK_DEFINITION_KIND,
    check_fargate_size,
    comparable,
    ensure_task_definition,
    execution_role_statements,
    log_group_name,
    needs_new_revision,
    task_definition_request,
    task_execution_role,
)
from .tasks import (
    CLUSTER_KIND,
    PHASES,
    SECURITY_GROUP_KIND,
    TASK_KIND,
    TASK_SG_NAME,
    TIMESTAMP_FIELDS,
    TaskResult,
    default_subnets,
    ensure_cluster,
    ensure_task_security_group,
    lifecycle_frame,
    run_task,
    task_logs,
    task_result,
    wait_for_task,
)

__all__ = [
    "CLUSTER_KIND",
    "FARGATE_SIZES",
    "PHASES",
    "SECURITY_GROUP_KIND",
    "SERVICE_KIND",
    "TASK_DEFINITION_KIND",
    "TASK_KIND",
    "TASK_SG_NAME",
    "TIMESTAMP_FIELDS",
    "TaskResult",
    "check_fargate_size",
    "comparable",
    "default_subnets",
    "describe_service",
    "ensure_cluster",
    "ensure_service",
    "ensure_task_definition",
    "ensure_task_security_group",
    "execution_role_statements",
    "lifecycle_frame",
    "log_group_name",
    "needs_new_revision",
    "run_task",
    "service_events",
    "service_tasks",
    "task_definition_request",
    "task_execution_role",
    "task_logs",
    "task_result",
    "utilisation_frame",
    "wait_for_steady_state",
    "wait_for_task",
]
