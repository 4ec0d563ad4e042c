"""The ECS provider: Fargate tasks run as local processes; services keep them running.

moto stays the control plane (clusters, task definitions, services, the task records and
their ENI attachments); this provider starts each task's containers from the local image
store, walks the task lifecycle on real events, ships container output to CloudWatch Logs
(`awslogs`) and answers DescribeTasks / ListTasks / StopTask from that real state. Fargate
services are run by the local scheduler (`scheduler.py`): desiredCount, replacement of tasks
that exit or fail ALB health checks, target registration, deployments, events and AWS/ECS
utilisation metrics. EC2 and EXTERNAL launch types are passed to moto untouched.

The parts: `runner.py` starts and keeps the tasks (`task.py`: one task's processes,
lifecycle and logs; `containers.py`: image, command and environment of a container;
`secrets.py`: the container `secrets`; `health.py`: container health checks),
`scheduler.py` runs services, `service_api.py` checks and records service requests,
`sizes.py` checks Fargate task sizes, and `moto_records.py` is what is read from and written
into moto's ECS state.

Where the local cloud differs from AWS:
- A container is a process on this machine, started from the image's files with the
  image's Python environment (a python/python3 entrypoint runs the image's venv Python):
  no network isolation, no awsvpc networking (the ENI and its private IP are moto's
  inventions; a container port is reachable on localhost), CPU and memory are not enforced.
  The ENI attachment is ATTACHED from RunTask on; at DEPROVISIONING the ENI is deleted
  (releasing its security groups) and the attachment says DELETED, with no states between.
- Containers reach the local cloud through AWS_ENDPOINT_URL with dummy credentials; the
  task role and execution role are not checked: IAM is not enforced in the local cloud, so
  `secrets` are read whether or not the execution role may call
  secretsmanager:GetSecretValue or ssm:GetParameters (AWS then stops the task with
  AccessDeniedException). A secret's failure texts (`secrets.py`) follow what AWS's agent
  reports (AWS documents none of them); a SecretBinary-only secret fails the task here.
  SSL_CERT_FILE, REQUESTS_CA_BUNDLE and AWS_CA_BUNDLE name a bundle of the machine's CAs
  plus the local cloud's CA, so container code verifies the local TLS endpoints unchanged
  (an image's or task's own values win).
  ECS_CONTAINER_METADATA_URI_V4 is not set (there is no task metadata endpoint).
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
- Container health checks run as processes in the container's environment (`health.py`);
  AWS's texts for health check bounds at RegisterTaskDefinition are not documented, so that
  message is the local cloud's own. dependsOn ordering, firelens, EFS volumes and ECS Exec
  are not run.
- RegisterTaskDefinition checks Fargate's network mode and cpu/memory pairs (`sizes.py`);
  other task definition checks AWS makes (container memory within the task's, port mapping
  rules) are left to moto, which makes few. DescribeTasks names an unknown task id with the
  ARN it would have in the requested cluster.
- Stopped tasks stay visible until the local cloud is reset (AWS: about an hour).
- awslogs streams keep their latest 10,000 events each (LOCALCLOUD_LOG_EVENTS_PER_STREAM);
  AWS keeps every event for the log group's retention period.
- Services: rolling deployments only (minimumHealthyPercent 100, maximumPercent 200; no
  circuit breaker, blue/green, capacity provider weights or placement). A task that keeps
  failing is restarted after 1, 2, 4 ... 60 s. AWS/ECS CPUUtilization and MemoryUtilization
  are sampled every 5 s from the task processes (CPU time and resident memory, as a percent
  of the task's cpu and memory size); AWS publishes them once a minute.
- Under the AWS timing profile (`localcloud/timing.py`), CreateCluster and RunTask fail with
  AWS's InvalidParameterException while the account's ECS service-linked role is being
  created (the first call creates it), and RunTask while a role of the task definition is
  younger than IAM's propagation delay. A service's own task launches are not delayed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..iam.propagation import role_propagated, service_linked_role_ready
from ..protocols import ServiceError
from ..registry import Provider, RequestContext
from .health import check_health_checks
from .moto_records import MotoRecords
from .runner import TaskRunner
from .scheduler import ServiceScheduler
from .service_api import ServiceApi
from .sizes import normalised_size

if TYPE_CHECKING:
    from ..context import CloudContext

DEFAULT_STOP_REASON = "Task stopped by user"


class EcsProvider(Provider):
    """Runs Fargate tasks locally; everything else about ECS stays with moto."""

    service = "ecs"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.records = MotoRecords(cloud.moto)
        self.runner = TaskRunner(cloud, self.records)
        self.scheduler = ServiceScheduler(cloud, self.runner, self.records)
        self.service_api = ServiceApi(cloud.moto, self.records, self.scheduler)
        cloud.addresses.add_resolver(self.runner.local_address)

    # --- tasks ----------------------------------------------------------------------------

    def CreateCluster(self, params: dict, context: RequestContext) -> dict:
        """moto's cluster, once ECS's service-linked role exists (AWS timing profile)."""
        self._require_service_linked_role(context)
        return self.cloud.moto.call("ecs", "CreateCluster", params, context.region)

    def RegisterTaskDefinition(self, params: dict, context: RequestContext) -> dict:
        """AWS's checks that moto skips (Fargate sizes, health checks), then moto stores it."""
        params = normalised_size(params)
        check_health_checks(params.get("containerDefinitions") or [])
        return self.cloud.moto.call("ecs", "RegisterTaskDefinition", params, context.region)

    def RunTask(self, params: dict, context: RequestContext) -> dict:
        """Start the task's containers as local processes (Fargate); moto records the task."""
        self._require_service_linked_role(context)
        self._require_task_roles(params, context)
        return self.runner.run_tasks(params, context)

    def DescribeTasks(self, params: dict, context: RequestContext) -> dict:
        """moto's task records with the locally run tasks' real status; MISSING for others."""
        result = self.cloud.moto.call("ecs", "DescribeTasks", params, context.region)
        found = set()
        for task in result.get("tasks", []):
            self.runner.overlay(task)
            found.update({task["taskArn"], task["taskArn"].rsplit("/", 1)[-1]})
        cluster = (params.get("cluster") or "default").rsplit("/", 1)[-1]
        failures = result.setdefault("failures", [])
        for requested in params.get("tasks") or []:
            if requested in found:
                continue
            arn = requested
            if not requested.startswith("arn:"):
                prefix = f"arn:aws:ecs:{context.region}:{context.account_id}"
                arn = f"{prefix}:task/{cluster}/{requested}"
            failures.append({"arn": arn, "reason": "MISSING"})
        return result

    def ListTasks(self, params: dict, context: RequestContext) -> dict:
        """Task ARNs; desiredStatus defaults to RUNNING; serviceName filters (moto ignores it)."""
        params = {**params, "desiredStatus": params.get("desiredStatus") or "RUNNING"}
        service_name = params.pop("serviceName", None)
        result = self.cloud.moto.call("ecs", "ListTasks", params, context.region)
        if service_name:
            service = self.scheduler.find(params.get("cluster"), service_name)
            if service is None:
                raise ServiceError("ServiceNotFoundException", "Service not found.", 400)
            mine = service.task_arns()
            result["taskArns"] = [arn for arn in result.get("taskArns", []) if arn in mine]
        return result

    def StopTask(self, params: dict, context: RequestContext) -> dict:
        """SIGTERM to the task's processes, SIGKILL after stopTimeout; returns the task."""
        local = self.runner.find(params.get("task", ""))
        if local is None:
            return self.cloud.moto.call("ecs", "StopTask", params, context.region)
        described = self.cloud.moto.call(
            "ecs",
            "DescribeTasks",
            {"cluster": params.get("cluster") or local.cluster_arn, "tasks": [local.arn]},
            context.region,
        )
        self.runner.stop(local, params.get("reason") or DEFAULT_STOP_REASON)
        task = (described.get("tasks") or [{"taskArn": local.arn}])[0]
        local.overlay(task)
        return {"task": task}

    # --- clusters and services ------------------------------------------------------------

    def DeleteCluster(self, params: dict, context: RequestContext) -> dict:
        """Refused while services or tasks are active, as on AWS (moto deletes anyway)."""
        cluster = params.get("cluster", "default")
        if self.scheduler.active_in_cluster(cluster):
            raise ServiceError(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
                400,
            )
        if self.runner.active_in_cluster(cluster):
            raise ServiceError(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
                400,
            )
        return self.cloud.moto.call("ecs", "DeleteCluster", params, context.region)

    def CreateService(self, params: dict, context: RequestContext) -> dict:
        """moto records the service; the local scheduler runs its tasks."""
        return self.service_api.create(params, context)

    def UpdateService(self, params: dict, context: RequestContext) -> dict:
        """Desired count and deployments, carried out by the local scheduler."""
        return self.service_api.update(params, context)

    def DeleteService(self, params: dict, context: RequestContext) -> dict:
        """The service drains (its tasks stop), then becomes INACTIVE."""
        return self.service_api.delete(params, context)

    # --- the AWS timing profile: roles that have not reached ECS yet ---------------------

    def _require_service_linked_role(self, context: RequestContext) -> None:
        """Fail as a new account's first ECS call does, while ECS creates its role."""
        if not service_linked_role_ready(
            self.cloud.moto,
            self.cloud.timing,
            context.account_id,
            "ecs.amazonaws.com",
            "AWSServiceRoleForECS",
        ):
            raise ServiceError(
                "InvalidParameterException",
                "Unable to assume the service linked role. Please verify that the ECS service "
                "linked role exists.",
            )

    def _require_task_roles(self, params: dict, context: RequestContext) -> None:
        """Fail as RunTask does when a role of the task was created moments ago."""
        if not self.cloud.timing.aws:
            return
        found = self.cloud.moto.call(
            "ecs",
            "DescribeTaskDefinition",
            {"taskDefinition": params.get("taskDefinition", "")},
            context.region,
        )["taskDefinition"]
        for role in (found.get("executionRoleArn"), found.get("taskRoleArn")):
            if role and not role_propagated(
                self.cloud.moto, self.cloud.timing, context.account_id, role
            ):
                raise ServiceError(
                    "InvalidParameterException",
                    f"ECS was unable to assume the role '{role}' that was provided for this "
                    "task. Please verify that the role being passed has the proper trust "
                    "relationship and permissions and that your IAM user has permissions to "
                    "pass this role.",
                )

    # --- the local cloud's own calls ------------------------------------------------------

    def endpoints(self) -> dict[str, Any]:
        """Running tasks' container ports as local URLs (for benchmarks and debugging)."""
        return {"tasks": self.runner.endpoints()}

    def reset(self) -> None:
        """Kill every task process and forget the tasks and services."""
        self.scheduler.clear()
        self.runner.reset()

    def shutdown(self) -> None:
        """Kill every task process; the last container output is written to the logs."""
        self.scheduler.close()
        self.reset()
        self.cloud.logs.flush()

    def status(self) -> dict[str, Any]:
        """Running and stopped tasks."""
        tasks = list(self.runner.tasks.values())
        running = sum(1 for t in tasks if t.running)
        services = sum(1 for s in self.scheduler.services.values() if s.status != "INACTIVE")
        return {
            "services": services,
            "running tasks": running,
            "stopped tasks": len(tasks) - running,
        }
