"""ECS services on the local cloud: the scheduler that keeps `desiredCount` tasks running.

moto stores the service (CreateService, DescribeServices) but never starts its tasks. Here a
scheduler thread reconciles every service a few times a second, the way the ECS service
scheduler does:

- it starts tasks until `desiredCount` run, and stops the newest extra ones when scaled in;
- a task that exits is replaced (with a back-off when tasks keep failing);
- behind a load balancer, a RUNNING task is registered in the target group; a task that
  the ALB reports `unhealthy` after the health-check grace period is replaced; a task the
  scheduler stops is first deregistered and stopped once its target has drained
  (the target group's deregistration delay);
- a new task definition (or forceNewDeployment) starts a new PRIMARY deployment; the old
  deployment's tasks are stopped once the new one has `desiredCount` healthy tasks
  (minimumHealthyPercent 100, maximumPercent 200);
- runningCount, pendingCount, deployments (rolloutState) and the service events are written
  into moto's service record, so DescribeServices and the services_stable waiter see them;
- every SAMPLE_S it publishes AWS/ECS CPUUtilization and MemoryUtilization per service,
  measured from the tasks' processes (percent of the task's cpu and memory size).

AWS's scheduler: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from ..elbv2.provider import ElbV2Provider
from ..protocols import ServiceError
from ..registry import RequestContext
from .models import Deployment, Draining, LocalService, new_deployment_id, utc_now
from .moto_records import MotoRecords
from .runner import TaskRunner
from .task import LocalTask

if TYPE_CHECKING:
    from ..context import CloudContext

log = logging.getLogger(__name__)

TICK_S = 0.25  # how often services are reconciled
# AWS/ECS utilisation sampling interval (AWS aggregates per minute); tests shorten it
SAMPLE_S = float(os.environ.get("LOCALCLOUD_ECS_SAMPLE_SECONDS", 5))
HEALTHY_RESET_S = 10.0  # a task running this long without problems resets the back-off


class ServiceScheduler:
    """Reconciles every local service from one background thread."""

    def __init__(self, cloud: CloudContext, runner: TaskRunner, records: MotoRecords) -> None:
        self.cloud = cloud
        self.runner = runner
        self.records = records
        self.services: dict[str, LocalService] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._last_sample = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="ecs-services", daemon=True)
        self._thread.start()

    # --- API called by the provider -------------------------------------------------------

    def add(self, service: LocalService) -> None:
        """Start scheduling a service that moto has just created."""
        with self._lock:
            self.services[service.arn] = service
            self._reconcile(service)

    def find(self, cluster: str | None, name: str) -> LocalService | None:
        """A service by ARN, or by name within a cluster (name or ARN)."""
        cluster_name = (cluster or "default").rsplit("/", 1)[-1]
        for service in self.services.values():
            if name in (service.arn, service.name) and (
                name == service.arn or service.cluster_name == cluster_name
            ):
                return service
        return None

    def update(self, service: LocalService, params: dict[str, Any], task_definition: str) -> None:
        """UpdateService: desired count, and a new deployment for a new task definition."""
        with self._lock:
            if params.get("desiredCount") is not None:
                service.desired_count = int(params["desiredCount"])
                service.steady = False
            if params.get("healthCheckGracePeriodSeconds") is not None:
                service.grace_s = float(params["healthCheckGracePeriodSeconds"])
            if params.get("networkConfiguration"):
                service.network_configuration = params["networkConfiguration"]
            if task_definition != service.primary.task_definition or params.get(
                "forceNewDeployment"
            ):
                for old in service.deployments:
                    old.status, old.updated_at = "ACTIVE", utc_now()
                service.deployments.insert(0, Deployment(new_deployment_id(), task_definition))
                service.steady = False
            self._reconcile(service)

    def delete(self, service: LocalService) -> None:
        """DeleteService: DRAINING until its tasks stopped, then INACTIVE."""
        with self._lock:
            service.status, service.desired_count = "DRAINING", 0
            for arn in self._live_task_arns(service):
                self._begin_stop(service, arn, self._scale_in_reason(service))
            self._reconcile(service)

    def active_in_cluster(self, cluster: str) -> bool:
        """True while a service of the cluster is ACTIVE or DRAINING."""
        name = cluster.rsplit("/", 1)[-1]
        return any(
            s.status != "INACTIVE" and s.cluster_name == name for s in self.services.values()
        )

    def close(self) -> None:
        """Stop the scheduler thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def clear(self) -> None:
        """Forget every service (reset)."""
        with self._lock:
            self.services.clear()

    # --- the reconcile loop ---------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            with self._lock:
                services = list(self.services.values())
            for service in services:
                try:
                    with self._lock:
                        self._reconcile(service)
                except Exception:  # one broken service must not stop the others
                    log.exception("reconciling %s failed", service.name)
            if time.monotonic() - self._last_sample >= SAMPLE_S:
                self._last_sample = time.monotonic()
                for service in services:
                    if service.status != "INACTIVE":
                        self._publish_utilisation(service)

    def _publish_utilisation(self, service: LocalService) -> None:
        """Record AWS/ECS CPUUtilization and MemoryUtilization samples of a service's tasks."""
        tasks = [self.runner.tasks[arn] for arn in self._live_task_arns(service)]
        samples = [measured for task in tasks if (measured := task.usage()) is not None]
        dimensions = {"ClusterName": service.cluster_name, "ServiceName": service.name}
        for cpu, memory in samples:
            self.cloud.publisher.record("AWS/ECS", "CPUUtilization", cpu, dimensions, "Percent")
            self.cloud.publisher.record(
                "AWS/ECS", "MemoryUtilization", memory, dimensions, "Percent"
            )

    def _task(self, arn: str) -> LocalTask | None:
        return self.runner.get(arn)

    def _live_task_arns(self, service: LocalService) -> list[str]:
        """Tasks not yet STOPPED (any deployment)."""
        return [
            arn
            for arn in service.task_arns()
            if (task := self._task(arn)) is not None and task.running
        ]

    def _kept(self, service: LocalService, arns: list[str]) -> list[str]:
        """Tasks the service keeps: not stopped, not being stopped, not draining."""
        return [
            arn
            for arn in arns
            if (task := self._task(arn)) is not None
            and task.running
            and task.desired_status == "RUNNING"
            and arn not in service.draining
        ]

    def _load_balancer(self) -> ElbV2Provider:
        """The local ALB, which serves target registration and live target health."""
        return self.cloud.providers.get(ElbV2Provider)

    def _start_tasks(self, service: LocalService, deployment: Deployment, count: int) -> list[str]:
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
            result = self.runner.run_tasks(params, service.context, service.arn)
        except ServiceError as error:
            service.event(f"was unable to place a task. Reason: {error.message}.")
            return []
        started = [task["taskArn"] for task in result.get("tasks", [])]
        deployment.tasks.extend(started)
        return started

    def _reconcile(self, service: LocalService) -> None:
        """One pass: handle stopped tasks, targets, health, scaling, rollout, moto's record."""
        if service.status == "INACTIVE":
            return
        now = time.monotonic()
        self._handle_stopped(service)
        self._register_running(service)
        self._replace_unhealthy(service, now)
        self._replace_unhealthy_containers(service)
        self._finish_draining(service, now)
        if service.status == "ACTIVE":
            self._scale(service, now)
            self._retire_old_deployments(service)
        elif not self._live_task_arns(service):
            service.status = "INACTIVE"
        self._update_rollout(service)
        self.records.write_service(service, self._last_status)

    def _last_status(self, arn: str) -> str | None:
        """A task's lastStatus, or None if the runner does not know it (any more)."""
        task = self._task(arn)
        return task.last_status if task is not None else None

    def _handle_stopped(self, service: LocalService) -> None:
        """Deregister stopped tasks; count failures for the back-off."""
        for deployment in service.deployments:
            for arn in deployment.tasks:
                task = self._task(arn)
                if task is None or task.running or arn in service.counted:
                    continue
                service.counted.add(arn)
                service.draining.pop(arn, None)
                self._deregister(service, arn, announce=True)
                if task.stop_code == "TaskFailedToStart":
                    service.event(f"was unable to place a task. Reason: {task.stopped_reason}.")
                if task.stop_code in ("TaskFailedToStart", "EssentialContainerExited"):
                    deployment.failed_tasks += 1
                    service.consecutive_failures += 1
                    delay = min(2.0 ** (service.consecutive_failures - 1), 60.0)
                    service.next_start_at = time.monotonic() + delay
                    service.steady = False

    def _register_running(self, service: LocalService) -> None:
        """Register RUNNING tasks in the service's target groups."""
        if not service.load_balancers:
            return
        for arn in self._live_task_arns(service):
            task = self._task(arn)
            if (
                task is None
                or task.last_status != "RUNNING"
                or task.desired_status != "RUNNING"
                or arn in service.registered
                or arn in service.draining
                or task.private_ip is None
            ):
                continue
            targets = []
            for balancer in service.load_balancers:
                target = {"Id": task.private_ip, "Port": int(balancer["containerPort"])}
                group = balancer["targetGroupArn"]
                try:
                    self._load_balancer().RegisterTargets(
                        {"TargetGroupArn": group, "Targets": [target]}, _request(service)
                    )
                except ServiceError as error:  # e.g. the target group was deleted under us
                    log.debug("cannot register %s in %s: %s", arn, group, error.message)
                    continue
                targets.append({"group": group, "target": target})
                service.event(f"registered 1 targets in (target-group {group})")
            service.registered[arn] = targets

    def _deregister(self, service: LocalService, arn: str, announce: bool) -> None:
        """Deregister a task's targets (idempotent)."""
        for entry in service.registered.pop(arn, []):
            params = {"TargetGroupArn": entry["group"], "Targets": [entry["target"]]}
            try:
                self._load_balancer().DeregisterTargets(params, _request(service))
            except ServiceError:  # the target group is gone already
                continue
            if announce:
                service.event(f"deregistered 1 targets in (target-group {entry['group']})")

    def _target_states(self, service: LocalService, arn: str) -> list[tuple[str, dict[str, Any]]]:
        """(target group, TargetHealth) of a registered task's targets."""
        states = []
        for entry in service.registered.get(arn, []):
            group = self._load_balancer().group(entry["group"])
            if group is None:  # deleted under us
                continue
            target = entry["target"]
            for description in group.describe([(target["Id"], target["Port"])]):
                states.append((entry["group"], description["TargetHealth"]))
        return states

    def _healthy(self, service: LocalService, arn: str) -> bool:
        """RUNNING, and healthy in every target group when behind a load balancer."""
        task = self._task(arn)
        if task is None or task.last_status != "RUNNING" or arn in service.draining:
            return False
        if task.has_health_checks and task.health_status != "HEALTHY":
            return False
        if not service.load_balancers:
            return True
        states = self._target_states(service, arn)
        return bool(states) and all(health.get("State") == "healthy" for _, health in states)

    def _replace_unhealthy(self, service: LocalService, now: float) -> None:
        """Stop tasks the load balancer reports unhealthy after the grace period."""
        if not service.load_balancers:
            return
        for arn in list(service.registered):
            task = self._task(arn)
            if task is None or arn in service.draining or "startedAt" not in task.times:
                continue
            running_for = (utc_now() - task.times["startedAt"]).total_seconds()
            if running_for < service.grace_s:
                continue
            for group, health in self._target_states(service, arn):
                if health.get("State") != "unhealthy":
                    continue
                port = service.registered[arn][0]["target"]["Port"]
                service.event(
                    f"(port {port}) is unhealthy in (target-group {group}) due to "
                    f"(reason {health.get('Description') or health.get('Reason')})."
                )
                service.consecutive_failures += 1
                self._begin_stop(
                    service, arn, f"Task failed ELB health checks in (target-group {group})"
                )
                break

    def _replace_unhealthy_containers(self, service: LocalService) -> None:
        """Stop tasks whose essential containers fail their health checks (health.py)."""
        for arn in self._kept(service, list(service.task_arns())):
            task = self._task(arn)
            if task is not None and task.health_status == "UNHEALTHY":
                service.event(f"(task {task.id}) failed container health checks.")
                service.consecutive_failures += 1
                self._begin_stop(service, arn, "Task failed container health checks")

    def _begin_stop(self, service: LocalService, arn: str, reason: str) -> None:
        """Deregister now, stop after the target group's deregistration delay."""
        if arn in service.draining:
            return
        groups = [self._load_balancer().group(e["group"]) for e in service.registered.get(arn, [])]
        delay = max((g.settings.deregistration_delay for g in groups if g is not None), default=0.0)
        self._deregister(service, arn, announce=True)
        service.draining[arn] = Draining(time.monotonic() + delay, reason)
        if delay:
            service.event("has begun draining connections on 1 tasks.")

    def _finish_draining(self, service: LocalService, now: float) -> None:
        """Stop the tasks whose targets have drained."""
        done = [arn for arn, d in service.draining.items() if d.stop_at <= now]
        stopped = []
        for arn in done:
            task = self._task(arn)
            reason = service.draining.pop(arn).reason
            if task is not None and task.running and task.desired_status == "RUNNING":
                task.request_stop(reason, "ServiceSchedulerInitiated")
                stopped.append(task.id)
                service.counted.add(arn)  # a scheduler stop is not a failure
        if stopped:
            service.event(
                f"has stopped {len(stopped)} running tasks: "
                + " ".join(f"(task {task_id})" for task_id in stopped)
                + "."
            )

    def _scale(self, service: LocalService, now: float) -> None:
        """Start or stop PRIMARY tasks so that desiredCount of them run."""
        primary = service.primary
        live = self._kept(service, primary.tasks)
        self._reset_back_off(service, live)
        missing = service.desired_count - len(live)
        if missing > 0 and now >= service.next_start_at:
            started = self._start_tasks(service, primary, missing)
            if started:
                service.steady = False
                service.event(
                    f"has started {len(started)} tasks: "
                    + " ".join(f"(task {arn.rsplit('/', 1)[-1]})" for arn in started)
                    + "."
                )
        elif missing < 0:
            for arn in sorted(live, key=self._started_order, reverse=True)[:-missing]:
                self._begin_stop(service, arn, self._scale_in_reason(service))

    def _reset_back_off(self, service: LocalService, live: list[str]) -> None:
        """Forget earlier failures once a task has run well for a while."""
        if service.consecutive_failures == 0:
            return
        for arn in live:
            task = self._task(arn)
            started = task.times.get("startedAt") if task else None
            long_enough = started and (utc_now() - started).total_seconds() >= HEALTHY_RESET_S
            if long_enough and self._healthy(service, arn):
                service.consecutive_failures, service.next_start_at = 0, 0.0
                return

    def _started_order(self, arn: str) -> dt.datetime:
        task = self._task(arn)
        return task.times["createdAt"] if task else utc_now()

    @staticmethod
    def _scale_in_reason(service: LocalService) -> str:
        return f"Scaling activity initiated by (deployment {service.primary.id})"

    def _retire_old_deployments(self, service: LocalService) -> None:
        """Stop an old deployment's tasks once the PRIMARY one is fully healthy."""
        if len(service.deployments) == 1:
            return
        primary = service.primary
        healthy = [arn for arn in primary.tasks if self._healthy(service, arn)]
        if len(healthy) < service.desired_count:
            return
        for old in service.deployments[1:]:
            for arn in self._kept(service, old.tasks):
                self._begin_stop(
                    service, arn, f"Scaling activity initiated by (deployment {primary.id})"
                )
        service.deployments = [primary] + [
            old
            for old in service.deployments[1:]
            if any((t := self._task(arn)) is not None and t.running for arn in old.tasks)
        ]

    def _update_rollout(self, service: LocalService) -> None:
        """rolloutState, and the steady-state event when the service settles."""
        primary = service.primary
        live = self._kept(service, primary.tasks)
        settled = (
            service.status == "ACTIVE"
            and len(service.deployments) == 1
            and len(live) == service.desired_count
            and all(self._healthy(service, arn) for arn in live)
            and not service.draining
        )
        if settled and primary.rollout_state != "COMPLETED":
            primary.rollout_state, primary.updated_at = "COMPLETED", utc_now()
        if settled and not service.steady:
            service.steady = True
            service.event("has reached a steady state.")
        if not settled:
            service.steady = False


def _request(service: LocalService) -> RequestContext:
    """A request context in the service's account and region (for the ALB's operations)."""
    return RequestContext(service.context.region, service.context.account_id)
