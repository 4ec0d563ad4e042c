"""The task runner: RunTask's Fargate tasks started as local processes, and kept track of.

moto records each task (and its ENI); the runner plans the task's containers, gives each
container port a free loopback port, and starts a `LocalTask`, whose thread resolves the
images, creates the awslogs streams and walks the lifecycle. EC2 and EXTERNAL tasks stay
moto's records alone.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ..motogateway import MissingLogGroup
from ..registry import RequestContext
from .containers import ContainerPlan, ContainerResolver, StartFailure, free_port, plan_container
from .moto_records import MotoRecords
from .task import ContainerRun, LocalTask, network_interfaces

if TYPE_CHECKING:
    from ..context import CloudContext

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


class TaskRunner:
    """Every task started locally, by ARN; starts new ones for RunTask and for services."""

    def __init__(self, cloud: CloudContext, records: MotoRecords) -> None:
        self.cloud = cloud
        self.records = records
        self.resolver = ContainerResolver(cloud)
        self.tasks: dict[str, LocalTask] = {}

    def run_tasks(
        self, params: dict, context: RequestContext, service_arn: str | None = None
    ) -> dict:
        """RunTask for callers and for services: moto's record plus local processes."""
        definition = self.records.task_definition(params.get("taskDefinition", ""), context)
        result = self.records.run_task(params, context, lend_memory=definition is not None)
        if definition is None:
            return result
        overrides = {
            o.get("name"): o for o in (params.get("overrides") or {}).get("containerOverrides", [])
        }
        for task in result.get("tasks", []):
            if not _is_fargate(task):
                continue
            local = self._start(task, definition, overrides, context)
            local.cluster_arn = task.get("clusterArn", "default")
            local.service_arn = service_arn
            interfaces = network_interfaces(task)
            local.private_ip = interfaces[0]["privateIpv4Address"] if interfaces else None
            self.tasks[local.arn] = local
            local.overlay(task)
        return result

    def get(self, arn: str) -> LocalTask | None:
        """A local task by ARN."""
        return self.tasks.get(arn)

    def find(self, task: str) -> LocalTask | None:
        """A local task by ARN or id."""
        if task in self.tasks:
            return self.tasks[task]
        task_id = task.rsplit("/", 1)[-1]
        return next((t for t in self.tasks.values() if t.id == task_id), None)

    def overlay(self, task: dict[str, Any]) -> None:
        """Show a task dict from moto with its real state, if the task runs locally."""
        local = self.tasks.get(task.get("taskArn", ""))
        if local is not None:
            local.overlay(task)

    def stop(self, local: LocalTask, reason: str) -> None:
        """StopTask: the processes are stopped; moto's record says so at once."""
        local.request_stop(reason)
        local.report_status()

    def active_in_cluster(self, cluster: str) -> bool:
        """True while a task of the cluster (name or ARN) has not STOPPED."""
        name = cluster.rsplit("/", 1)[-1]
        return any(
            t.running and t.cluster_arn.rsplit("/", 1)[-1] == name for t in self.tasks.values()
        )

    def local_address(self, private_ip: str, port: int) -> tuple[str, int] | None:
        """Where a task's ENI address and container port are reachable on this machine."""
        for task in list(self.tasks.values()):
            found = task.local_address(private_ip, port)
            if found is not None:
                return found
        return None

    def endpoints(self) -> dict[str, dict[str, str]]:
        """Running tasks' container ports as local URLs, by task ARN."""
        tasks: dict[str, dict[str, str]] = {}
        for task in list(self.tasks.values()):
            if task.last_status != "RUNNING":
                continue
            for run in task.containers:
                for container_port, host_port in run.host_ports.items():
                    key = f"{run.plan.name}:{container_port}"
                    tasks.setdefault(task.arn, {})[key] = f"http://127.0.0.1:{host_port}"
        return tasks

    def reset(self) -> None:
        """Kill every task process and forget the tasks."""
        for task in self.tasks.values():
            task.kill()
        for task in self.tasks.values():
            task.wait(5)
        self.tasks.clear()

    def _start(
        self,
        task: dict[str, Any],
        definition: dict[str, Any],
        overrides: dict[str, dict[str, Any]],
        context: RequestContext,
    ) -> LocalTask:
        """Create the local task; its thread resolves images and starts the processes."""
        arn = task["taskArn"]
        task_id = arn.rsplit("/", 1)[-1]
        cluster = task.get("clusterArn", "").rsplit("/", 1)[-1]
        containers = []
        by_name = {c["name"]: c for c in definition["containerDefinitions"]}
        for container_definition in definition["containerDefinitions"]:
            plan = plan_container(container_definition)
            run = ContainerRun(
                plan=plan,
                arn=f"arn:aws:ecs:{context.region}:{context.account_id}:container/"
                f"{cluster}/{task_id}/{uuid.uuid4()}",
            )
            if plan.log_options is not None:
                prefix = plan.log_options.get("awslogs-stream-prefix")
                run.log_stream = f"{prefix}/{plan.name}/{task_id}" if prefix else run.runtime_id
            for mapping in plan.port_mappings:
                if mapping.get("containerPort"):
                    run.host_ports[int(mapping["containerPort"])] = free_port()
            containers.append(run)

        def prepare(run: ContainerRun) -> None:
            name = run.plan.name
            self._prepare(run, by_name[name], overrides.get(name, {}), context)

        return LocalTask(
            arn,
            context.region,
            context.account_id,
            definition,
            containers,
            prepare,
            self.cloud.logs,
            self._report_status,
        )

    def _prepare(
        self,
        run: ContainerRun,
        definition: dict[str, Any],
        override: dict[str, Any],
        context: RequestContext,
    ) -> None:
        """Resolve the image, command, environment and log stream of one container."""
        self.resolver.resolve(run.plan, definition, override, context.region, context.account_id)
        if run.host_ports:
            # Tasks share this machine's network: each listens on its own loopback port.
            run.plan.env["PORT"] = str(next(iter(run.host_ports.values())))
            run.plan.env["HOST"] = "127.0.0.1"
        self._ensure_log_stream(run.plan, run.log_stream or run.runtime_id, context)

    def _ensure_log_stream(self, plan: ContainerPlan, stream: str, context: RequestContext) -> None:
        """awslogs: the container's stream; a missing group fails the task unless create-group."""
        options = plan.log_options
        if options is None:
            return
        group = options.get("awslogs-group", "")
        try:
            self.cloud.logs.ensure_stream(
                context.account_id,
                options.get("awslogs-region") or context.region,
                group,
                stream,
                create_group=str(options.get("awslogs-create-group", "false")).lower() == "true",
            )
        except MissingLogGroup as missing:
            raise StartFailure(
                "ResourceInitializationError: failed to validate logger args: create stream has "
                "been retried 1 times: failed to create Cloudwatch log stream: "
                "ResourceNotFoundException: The specified log group does not exist. "
                f"({group}) : exit status 1"
            ) from missing

    def _report_status(self, task: LocalTask) -> None:
        """Write a local task's status into moto's task record."""
        self.records.write_task_status(
            task.account_id,
            task.region,
            task.arn,
            task.last_status,
            task.desired_status,
            task.stopped_reason,
        )


def _is_fargate(task: dict[str, Any]) -> bool:
    """True for tasks that the local runner starts."""
    return task.get("launchType") == "FARGATE" or task.get("capacityProviderName") in (
        FARGATE_PROVIDERS
    )
