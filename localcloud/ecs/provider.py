"""The ECS provider: Fargate tasks run as local processes; services keep them running.

moto stays the control plane (clusters, task definitions, services, the task records and
their ENI attachments); this provider starts each task's containers from the local image
store, walks the task lifecycle on real events, ships container output to CloudWatch Logs
(`awslogs`) and answers DescribeTasks / ListTasks / StopTask from that real state. Fargate
services are run by the local scheduler (`services.py`): desiredCount, replacement of tasks
that exit or fail ALB health checks, target registration, deployments, events and AWS/ECS
utilisation metrics. EC2 and EXTERNAL launch types are passed to moto untouched.

Where the local cloud differs from AWS:
- A container is a process on this machine, started from the image's files with the
  image's Python environment (a python/python3 entrypoint runs the image's venv Python):
  no network isolation, no awsvpc networking (the ENI and its private IP are moto's
  inventions; a container port is reachable on localhost), CPU and memory are not enforced.
- Containers reach the local cloud through AWS_ENDPOINT_URL with dummy credentials; the
  task role and execution role are not checked. ECS_CONTAINER_METADATA_URI_V4 is not set
  (there is no task metadata endpoint).
- moto's RunTask needs container-level memory; when a container has none (as AWS allows on
  Fargate) the task memory is lent to it for the duration of the RunTask call only.
- A task with port mappings stays ACTIVATING until its ports accept connections (at most
  60 s), so RUNNING means ready for traffic; on AWS, ACTIVATING covers network and load
  balancer set-up and a container may still be starting when its task is RUNNING.
- Transitional states last about 60 ms each; there is no image pull (the image store is
  local), so pullStartedAt/pullStoppedAt bracket only the image look-up.
- stopTimeout defaults to 30 s as on Fargate (its maximum is 120 s); a process killed by a
  signal reports 128 + signal (137 for SIGKILL). StopTask without a reason says
  "Task stopped by user".
- Tasks share this machine's network. Each container port of a task's portMappings is
  given a free loopback port, passed to the container as PORT (with HOST=127.0.0.1); a
  container must listen on $PORT (defaulting to its containerPort keeps it right on AWS).
  The load balancer reaches the task's ENI address and container port through that mapping.
- Container health checks, dependsOn ordering, firelens, EFS volumes and ECS Exec are not
  run. Stopped tasks stay visible until the local cloud is reset (AWS: about an hour).
- Services: rolling deployments only (minimumHealthyPercent 100, maximumPercent 200; no
  circuit breaker, blue/green, capacity provider weights or placement). A task that keeps
  failing is restarted after 1, 2, 4 ... 60 s. AWS/ECS CPUUtilization and MemoryUtilization
  are sampled every 20 s from the task processes (CPU time and resident memory, as a percent
  of the task's cpu and memory size).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from ..motogateway.app import MOTO_LOCK
from ..protocols import ServiceError
from ..registry import Provider, RequestContext
from .containers import ContainerPlan, StartFailure, free_port, plan_container, resolve_container
from .service_api import create_service, delete_service, update_service
from .service_record import Deployment, LocalService
from .services import ServiceScheduler
from .tasks import ContainerRun, LocalTask, LogShipper

DEFAULT_STOP_REASON = "Task stopped by user"
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
_TIMES = (
    "createdAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "executionStoppedAt",
    "stoppedAt",
)


class EcsProvider(Provider):
    """Runs Fargate tasks locally; everything else about ECS stays with moto."""

    service = "ecs"

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.tasks: dict[str, LocalTask] = {}
        self.shipper = LogShipper()
        self.services = ServiceScheduler(self)
        cloud.addresses.add_resolver(self.local_address)

    def RunTask(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """Start the task's containers as local processes (Fargate); moto records the task."""
        return self.run_tasks(params, context)

    def run_tasks(
        self, params: dict, context: RequestContext, service_arn: str | None = None
    ) -> dict:
        """RunTask for callers and for services: moto's record plus local processes."""
        definition = self.task_definition(params.get("taskDefinition", ""), context)
        result = self._moto_run_task(params, context, definition)
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
            interfaces = _network_interfaces(task)
            local.private_ip = interfaces[0]["privateIpv4Address"] if interfaces else None
            self.tasks[local.arn] = local
            _overlay(task, local, definition)
        return result

    def start_service_tasks(
        self, service: LocalService, deployment: Deployment, count: int
    ) -> list[str]:
        """Start `count` tasks of a service's deployment; their ARNs."""
        params: dict[str, Any] = {
            "cluster": service.cluster_arn,
            "taskDefinition": deployment.task_definition,
            "count": count,
            "launchType": service.launch_type,
            "startedBy": deployment.id,
            "group": f"service:{service.name}",
        }
        if service.network_configuration:
            params["networkConfiguration"] = service.network_configuration
        if service.propagate_tags:
            params["tags"] = service.propagate_tags
        try:
            result = self.run_tasks(params, service.context, service.arn)
        except ServiceError as error:
            service.event(f"was unable to place a task. Reason: {error.message}.")
            return []
        started = [task["taskArn"] for task in result.get("tasks", [])]
        deployment.tasks.extend(started)
        return started

    def CreateService(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto records the service; the local scheduler runs its tasks."""
        return create_service(self, params, context)

    def UpdateService(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """Desired count and deployments, carried out by the local scheduler."""
        return update_service(self, params, context)

    def DeleteService(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """The service drains (its tasks stop), then becomes INACTIVE."""
        return delete_service(self, params, context)

    def DeleteCluster(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """Refused while services or tasks are active, as on AWS (moto deletes anyway)."""
        cluster = params.get("cluster", "default")
        if self.services.active_in_cluster(cluster):
            raise ServiceError(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
                400,
            )
        name = cluster.rsplit("/", 1)[-1]
        if any(t.running and t.cluster_arn.rsplit("/", 1)[-1] == name for t in self.tasks.values()):
            raise ServiceError(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
                400,
            )
        return self.cloud.moto.call("ecs", "DeleteCluster", params, context.region)

    def local_address(self, private_ip: str, port: int) -> tuple[str, int] | None:
        """Where a task's ENI address and container port are reachable on this machine."""
        for task in list(self.tasks.values()):
            found = task.local_address(private_ip, port)
            if found is not None:
                return found
        return None

    def endpoints(self) -> dict[str, Any]:
        """Running tasks' container ports as local URLs (for benchmarks and debugging)."""
        tasks: dict[str, dict[str, str]] = {}
        for task in list(self.tasks.values()):
            if task.last_status != "RUNNING":
                continue
            for run in task.containers:
                for container_port, host_port in run.host_ports.items():
                    key = f"{run.plan.name}:{container_port}"
                    tasks.setdefault(task.arn, {})[key] = f"http://127.0.0.1:{host_port}"
        return {"tasks": tasks}

    def DescribeTasks(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto's task records with the locally run tasks' real status."""
        result = self.cloud.moto.call("ecs", "DescribeTasks", params, context.region)
        for task in result.get("tasks", []):
            local = self.tasks.get(task.get("taskArn", ""))
            if local is not None:
                _overlay(task, local, local.task_definition)
        return result

    def ListTasks(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """Task ARNs; desiredStatus defaults to RUNNING; serviceName filters (moto ignores it)."""
        params = {**params, "desiredStatus": params.get("desiredStatus") or "RUNNING"}
        service_name = params.pop("serviceName", None)
        result = self.cloud.moto.call("ecs", "ListTasks", params, context.region)
        if service_name:
            service = self.services.find(params.get("cluster"), service_name)
            if service is None:
                raise ServiceError("ServiceNotFoundException", "Service not found.", 400)
            mine = self.services.task_arns(service)
            result["taskArns"] = [arn for arn in result.get("taskArns", []) if arn in mine]
        return result

    def StopTask(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """SIGTERM to the task's processes, SIGKILL after stopTimeout; returns the task."""
        local = self._find(params.get("task", ""))
        if local is None:
            return self.cloud.moto.call("ecs", "StopTask", params, context.region)
        described = self.cloud.moto.call(
            "ecs",
            "DescribeTasks",
            {"cluster": params.get("cluster") or local.cluster_arn, "tasks": [local.arn]},
            context.region,
        )
        local.request_stop(params.get("reason") or DEFAULT_STOP_REASON)
        local._sync_moto()
        task = (described.get("tasks") or [{"taskArn": local.arn}])[0]
        _overlay(task, local, local.task_definition)
        return {"task": task}

    def _find(self, task: str) -> LocalTask | None:
        """A local task by ARN or id."""
        if task in self.tasks:
            return self.tasks[task]
        task_id = task.rsplit("/", 1)[-1]
        return next((t for t in self.tasks.values() if t.id == task_id), None)

    def task_definition(self, name: str, context: RequestContext) -> dict[str, Any] | None:
        """A copy of the task definition from moto, or None if moto does not know it."""
        from moto.ecs.models import ecs_backends

        with MOTO_LOCK:
            try:
                found = ecs_backends[context.account_id][context.region].describe_task_definition(
                    name
                )
            except Exception:  # moto's own not-found error comes from its RunTask below
                return None
            return {
                "arn": found.arn,
                "family": found.family,
                "cpu": found.cpu,
                "memory": found.memory,
                "networkMode": found.network_mode,
                "containerDefinitions": copy.deepcopy(found.container_definitions),
            }

    def _moto_run_task(
        self, params: dict, context: RequestContext, definition: dict[str, Any] | None
    ) -> dict:
        """moto's RunTask, lending task memory to containers without any (moto needs it)."""
        from moto.ecs.models import ecs_backends

        with MOTO_LOCK:
            patched: list[dict[str, Any]] = []
            if definition is not None:
                found = ecs_backends[context.account_id][context.region].describe_task_definition(
                    params["taskDefinition"]
                )
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
                return self.cloud.moto.call("ecs", "RunTask", params, context.region)
            finally:
                for container in patched:
                    container.pop("memory", None)

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
            plan = plan_container(
                container_definition, overrides.get(container_definition["name"], {})
            )
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
            """Resolve the image, command, environment and log group of one container."""
            name = run.plan.name
            resolve_container(
                self.cloud,
                run.plan,
                by_name[name],
                overrides.get(name, {}),
                context.region,
                context.account_id,
            )
            if run.host_ports:
                # Tasks share this machine's network: each listens on its own loopback port.
                run.plan.env["PORT"] = str(next(iter(run.host_ports.values())))
                run.plan.env["HOST"] = "127.0.0.1"
            _ensure_log_stream(run.plan, run.log_stream or run.runtime_id, context)

        return LocalTask(
            arn, context.region, context.account_id, definition, containers, prepare, self.shipper
        )

    def reset(self) -> None:
        """Kill every task process and forget the tasks and services."""
        self.services.clear()
        for task in self.tasks.values():
            task.kill()
        for task in self.tasks.values():
            task.wait(5)
        self.tasks.clear()

    def shutdown(self) -> None:
        """Kill every task process and stop shipping logs."""
        self.services.close()
        self.reset()
        self.shipper.close()

    def status(self) -> dict[str, Any]:
        """Running and stopped tasks."""
        running = sum(1 for t in self.tasks.values() if t.running)
        services = sum(1 for s in self.services.services.values() if s.status != "INACTIVE")
        return {
            "services": services,
            "running tasks": running,
            "stopped tasks": len(self.tasks) - running,
        }


def _is_fargate(task: dict[str, Any]) -> bool:
    """True for tasks that the local runner starts."""
    return task.get("launchType") == "FARGATE" or task.get("capacityProviderName") in (
        FARGATE_PROVIDERS
    )


def _ensure_log_stream(plan: ContainerPlan, stream: str, context: RequestContext) -> None:
    """awslogs: the container's stream; a missing group fails the task unless create-group."""
    options = plan.log_options
    if options is None:
        return
    from moto.logs.models import logs_backends

    group = options.get("awslogs-group", "")
    region = options.get("awslogs-region") or context.region
    with MOTO_LOCK:
        logs = logs_backends[context.account_id][region]
        if group not in logs.groups:
            if str(options.get("awslogs-create-group", "false")).lower() != "true":
                raise _missing_group(group)
            logs.create_log_group(group, {})
        if stream not in logs.groups[group].streams:
            logs.create_log_stream(group, stream)


def _missing_group(group: str) -> StartFailure:
    """The task failure of an awslogs container whose group does not exist."""
    return StartFailure(
        "ResourceInitializationError: failed to validate logger args: create stream has been "
        "retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: "
        f"The specified log group does not exist. ({group}) : exit status 1"
    )


def _overlay(task: dict[str, Any], local: LocalTask, definition: dict[str, Any]) -> None:
    """Replace moto's status fields of a task dict by the local task's real ones."""
    task["lastStatus"] = local.last_status
    task["desiredStatus"] = local.desired_status
    task["cpu"] = task.get("cpu") or definition.get("cpu")
    task["memory"] = task.get("memory") or definition.get("memory")
    task.setdefault("platformVersion", "1.4.0")
    task["platformVersion"] = task["platformVersion"] or "1.4.0"
    task["connectivity"] = "CONNECTED"
    for name in _TIMES:
        if name in local.times:
            task[name] = local.times[name]
        else:
            task.pop(name, None)
    if local.stop_code:
        task["stopCode"] = local.stop_code
    if local.stopped_reason and local.desired_status == "STOPPED":
        task["stoppedReason"] = local.stopped_reason
    interfaces = _network_interfaces(task)
    task["containers"] = [_container(run, local, interfaces) for run in local.containers]


def _network_interfaces(task: dict[str, Any]) -> list[dict[str, str]]:
    """The ENI that moto attached, as containers[].networkInterfaces."""
    for attachment in task.get("attachments") or []:
        details = {d.get("name"): d.get("value") for d in attachment.get("details", [])}
        if "privateIPv4Address" in details:
            return [
                {
                    "attachmentId": attachment.get("id", ""),
                    "privateIpv4Address": details["privateIPv4Address"],
                }
            ]
    return []


def _container(run: ContainerRun, local: LocalTask, interfaces: list[dict[str, str]]) -> dict:
    """One containers[] entry."""
    entry: dict[str, Any] = {
        "containerArn": run.arn,
        "taskArn": local.arn,
        "name": run.plan.name,
        "image": run.plan.image,
        "runtimeId": run.runtime_id,
        "lastStatus": run.last_status,
        "networkInterfaces": interfaces,
        "healthStatus": "UNKNOWN",
    }
    if run.plan.image_digest:
        entry["imageDigest"] = run.plan.image_digest
    if run.exit_code is not None:
        entry["exitCode"] = run.exit_code
    if run.reason:
        entry["reason"] = run.reason
    return entry
