"""What the ECS provider reads from and writes into moto's ECS state, through the gateway.

moto keeps the control plane: task definitions, the task records and the service records.
The local runner and scheduler know the real state (a task's status, a service's counts,
deployments and events) and write it into moto's records, so that moto's own operations
(ListTasks filters, DescribeServices, the services_stable waiter) answer with it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..motogateway import MotoGateway
from ..registry import RequestContext
from .models import LocalService

PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")
ENI_ATTACHMENT = "ElasticNetworkInterface"  # a task attachment's type for its awsvpc ENI


class MotoRecords:
    """moto's ECS records: task definitions read, RunTask, task and service records written."""

    def __init__(self, moto: MotoGateway) -> None:
        self.moto = moto

    def task_definition(self, name: str, context: RequestContext) -> dict[str, Any] | None:
        """A copy of the task definition from moto, or None if moto does not know it."""
        with self.moto.backend("ecs", context.account_id, context.region) as backend:
            try:
                found = backend.describe_task_definition(name)
            except Exception:  # moto's own not-found error comes from its RunTask
                return None
            return {
                "arn": found.arn,
                "family": found.family,
                "cpu": found.cpu,
                "memory": found.memory,
                "networkMode": found.network_mode,
                "containerDefinitions": copy.deepcopy(found.container_definitions),
            }

    def run_task(self, params: dict, context: RequestContext, lend_memory: bool) -> dict:
        """moto's RunTask; with `lend_memory`, containers without memory get the task's."""
        with self.moto.backend("ecs", context.account_id, context.region) as backend:
            patched: list[dict[str, Any]] = []
            if lend_memory:
                found = backend.describe_task_definition(params["taskDefinition"])
                for container in found.container_definitions:
                    if not container.get("memory") and not container.get("memoryReservation"):
                        container["memory"] = int(found.memory or 512)
                        patched.append(container)
            awsvpc = (params.get("networkConfiguration") or {}).get("awsvpcConfiguration")
            if awsvpc is not None and "securityGroups" not in awsvpc:
                # Optional on AWS (the VPC's default group); moto fails with a KeyError.
                params = copy.deepcopy(params)
                params["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] = []
            try:
                return self.moto.call("ecs", "RunTask", params, context.region)
            finally:
                for container in patched:
                    container.pop("memory", None)

    def write_task_status(
        self,
        account_id: str,
        region: str,
        arn: str,
        last_status: str,
        desired_status: str,
        stopped_reason: str | None,
    ) -> None:
        """Keep moto's task record (what ListTasks filters on) in step with the real task.

        From DEPROVISIONING on the task's ENI is deleted, so whoever sees the task STOPPED
        (the next state) finds its security groups released.
        """
        with self.moto.backend("ecs", account_id, region) as backend:
            for tasks in backend.tasks.values():
                task = tasks.get(arn)
                if task is not None:
                    if last_status in ("DEPROVISIONING", "STOPPED"):
                        self._delete_interfaces(task.attachments, account_id, region)
                    task.last_status = last_status
                    task.desired_status = desired_status
                    task.stopped_reason = stopped_reason or ""

    def _delete_interfaces(
        self, attachments: list[dict[str, Any]], account: str, region: str
    ) -> None:
        """Delete the ENIs moto created for a task; their attachments then say DELETED.

        AWS detaches and deletes an awsvpc task's ENI while the task is DEPROVISIONING
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html);
        moto keeps it for ever, holding the task's security groups.
        """
        with self.moto.backend("ec2", account, region) as ec2:
            for attachment in attachments:
                if (
                    attachment.get("type") != ENI_ATTACHMENT
                    or attachment.get("status") == "DELETED"
                ):
                    continue
                details = {d.get("name"): d.get("value") for d in attachment.get("details", [])}
                ec2.enis.pop(details.get("networkInterfaceId"), None)
                attachment["status"] = "DELETED"

    def write_service(
        self, service: LocalService, last_status: Callable[[str], str | None]
    ) -> None:
        """Write the real counts, deployments and events into moto's service record.

        `last_status` gives a task's lastStatus by ARN (None for a task no longer known).
        """

        def counts(arns: list[str] | set[str]) -> tuple[int, int]:
            statuses = [last_status(arn) for arn in arns]
            running = statuses.count("RUNNING")
            return running, sum(1 for status in statuses if status in PENDING_STATES)

        running, pending = counts(service.task_arns())
        deployments = []
        for deployment in service.deployments:
            d_running, d_pending = counts(deployment.tasks)
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
        context = service.context
        with self.moto.backend("ecs", context.account_id, context.region) as backend:
            for record in backend.services.values():
                if record.arn == service.arn:
                    record.running_count, record.pending_count = running, pending
                    record.desired_count = service.desired_count
                    record.deployments = deployments
                    record.events = [dict(e) for e in service.events]
                    record.status = service.status
                    record.task_definition = service.primary.task_definition
