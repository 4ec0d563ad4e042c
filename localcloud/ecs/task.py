"""One running Fargate task: its containers' processes, its lifecycle thread and its logs.

A `LocalTask` walks AWS's lifecycle on real events (image resolution, process start, its
mapped ports accepting connections, process exit or StopTask) and records each transition
with its time, so that a poller sees PROVISIONING → PENDING → ACTIVATING → RUNNING →
DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED in order (every state but RUNNING lasts
at least STEP_S).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import orphans
from ..motogateway import LogsWriter
from .containers import ContainerPlan, StartFailure
from .health import ContainerHealth, task_health
from .models import utc_now

log = logging.getLogger("localcloud.ecs")

STEP_S = 0.06  # minimum time spent in each transitional state, so a poller can see it
LISTEN_TIMEOUT_S = 60.0  # a container with port mappings is RUNNING once it listens, or by then
TIMES = (
    "createdAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "executionStoppedAt",
    "stoppedAt",
)


@dataclass
class ContainerRun:
    """One container of a task: its plan, process and outcome."""

    plan: ContainerPlan
    arn: str
    runtime_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    process: subprocess.Popen[bytes] | None = None
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    reader: threading.Thread | None = None
    log_stream: str | None = None
    host_ports: dict[int, int] = field(default_factory=dict)  # containerPort -> loopback port
    health: ContainerHealth | None = None  # its health check, once the process started

    @property
    def health_status(self) -> str:
        """HEALTHY, UNHEALTHY or UNKNOWN (no health check, or not decided yet)."""
        return self.health.status if self.health is not None else "UNKNOWN"


class LocalTask:
    """A Fargate task run as local processes, one per container."""

    def __init__(
        self,
        arn: str,
        region: str,
        account_id: str,
        task_definition: dict[str, Any],
        containers: list[ContainerRun],
        prepare: Callable[[ContainerRun], None],
        logs: LogsWriter,
        report_status: Callable[[LocalTask], None],
    ) -> None:
        self.arn = arn
        self.id = arn.rsplit("/", 1)[-1]
        self.region = region
        self.account_id = account_id
        self.cluster_arn = "default"
        self.task_definition = task_definition
        self.containers = containers
        self.logs = logs
        self._prepare = prepare
        self._report_status = report_status
        self.last_status = "PROVISIONING"
        self.desired_status = "RUNNING"
        self.times: dict[str, dt.datetime] = {"createdAt": utc_now()}
        self.transitions: list[tuple[str, float]] = [("PROVISIONING", time.time())]
        self.stop_code: str | None = None
        self.stopped_reason: str | None = None
        self.private_ip: str | None = None  # the ENI address moto gave the task (awsvpc)
        self.service_arn: str | None = None  # set when an ECS service started the task
        self._cpu_seen: tuple[float, float] | None = None  # (wall time, CPU seconds)
        self._stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"ecs-task-{self.id}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """True until the task reached STOPPED."""
        return self.last_status != "STOPPED"

    @property
    def has_health_checks(self) -> bool:
        """True when an essential container has a health check (its health then counts)."""
        return any(c.plan.essential and c.plan.health is not None for c in self.containers)

    @property
    def health_status(self) -> str:
        """The task's healthStatus, from its essential containers that have health checks."""
        return task_health(
            [
                c.health_status
                for c in self.containers
                if c.plan.essential and c.plan.health is not None
            ]
        )

    def request_stop(self, reason: str, stop_code: str = "UserInitiated") -> None:
        """StopTask: stop the containers (SIGTERM, then SIGKILL after stopTimeout)."""
        with self._lock:
            if self.stop_code is None and self.running:
                self.stop_code, self.stopped_reason = stop_code, reason
                self.desired_status = "STOPPED"
        self._stop_requested.set()

    def local_address(self, private_ip: str, container_port: int) -> tuple[str, int] | None:
        """Where the container port that AWS would expose on the task's ENI listens here."""
        if private_ip != self.private_ip or self.last_status != "RUNNING":
            return None
        for container in self.containers:
            if container_port in container.host_ports:
                return "127.0.0.1", container.host_ports[container_port]
        return None

    def overlay(self, task: dict[str, Any]) -> None:
        """Replace moto's status fields of a task dict (DescribeTasks) by this task's real ones."""
        definition = self.task_definition
        task["lastStatus"] = self.last_status
        task["desiredStatus"] = self.desired_status
        task["cpu"] = task.get("cpu") or definition.get("cpu")
        task["memory"] = task.get("memory") or definition.get("memory")
        task.setdefault("platformVersion", "1.4.0")
        task["platformVersion"] = task["platformVersion"] or "1.4.0"
        task["connectivity"] = "CONNECTED"
        task["healthStatus"] = self.health_status
        for name in TIMES:
            if name in self.times:
                task[name] = self.times[name]
            else:
                task.pop(name, None)
        if self.stop_code:
            task["stopCode"] = self.stop_code
        if self.stopped_reason and self.desired_status == "STOPPED":
            task["stoppedReason"] = self.stopped_reason
        interfaces = network_interfaces(task)
        task["containers"] = [self._describe_container(run, interfaces) for run in self.containers]

    def _describe_container(self, run: ContainerRun, interfaces: list[dict[str, str]]) -> dict:
        """One containers[] entry."""
        entry: dict[str, Any] = {
            "containerArn": run.arn,
            "taskArn": self.arn,
            "name": run.plan.name,
            "image": run.plan.image,
            "runtimeId": run.runtime_id,
            "lastStatus": run.last_status,
            "networkInterfaces": interfaces,
            "healthStatus": run.health_status,
        }
        if run.plan.image_digest:
            entry["imageDigest"] = run.plan.image_digest
        if run.exit_code is not None:
            entry["exitCode"] = run.exit_code
        if run.reason:
            entry["reason"] = run.reason
        return entry

    def usage(self) -> tuple[float, float] | None:
        """(CPU %, memory %) of the task's size since the last call, measured from processes."""
        import psutil

        cpu_seconds, rss = 0.0, 0
        for container in self.containers:
            if container.process is None or container.process.poll() is not None:
                continue
            try:
                root = psutil.Process(container.process.pid)
                for process in [root, *root.children(recursive=True)]:
                    times = process.cpu_times()
                    cpu_seconds += times.user + times.system
                    rss += process.memory_info().rss
            except psutil.Error:  # exited between poll() and the measurement
                continue
        now, previous = time.monotonic(), self._cpu_seen
        self._cpu_seen = (now, cpu_seconds)
        if previous is None or now <= previous[0]:
            return None
        vcpus = int(self.task_definition.get("cpu") or 256) / 1024
        memory_mib = int(self.task_definition.get("memory") or 512)
        cpu = max(0.0, cpu_seconds - previous[1]) / (now - previous[0]) / vcpus * 100
        return round(cpu, 2), round(rss / 2**20 / memory_mib * 100, 2)

    def wait(self, timeout: float) -> bool:
        """Wait until the lifecycle thread ended; True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def kill(self) -> None:
        """Kill every process at once (reset / shutdown), without the grace period."""
        self._stop_requested.set()
        for container in self.containers:
            _signal_group(container.process, signal.SIGKILL)

    def _set(self, status: str, pause: bool = True) -> None:
        """Move to a status, record it, mirror it into moto's task and linger briefly."""
        with self._lock:
            self.last_status = status
            self.transitions.append((status, time.time()))
        self.report_status()
        if pause:
            time.sleep(STEP_S)

    def report_status(self) -> None:
        """Mirror the status into moto's task record (what ListTasks filters on)."""
        self._report_status(self)

    def _run(self) -> None:
        """The lifecycle: provision, pull, start, watch, stop."""
        try:
            time.sleep(STEP_S)
            self._set("PENDING", pause=False)
            self.times["pullStartedAt"] = utc_now()
            try:
                for container in self.containers:
                    self._prepare(container)
            finally:
                self.times["pullStoppedAt"] = utc_now()
            time.sleep(STEP_S)
            self._set("ACTIVATING")
            if not self._stop_requested.is_set():
                self._start_processes()
                self._start_health_checks()
                self._cpu_seen = (time.monotonic(), 0.0)  # usage() counts from the start
                self._wait_listening()
                self.times["startedAt"] = utc_now()
                self._set("RUNNING", pause=False)
                self._watch()
        except StartFailure as failure:
            self._fail(str(failure))
        except Exception as error:  # keep the daemon alive; the task shows why it stopped
            log.exception("task %s failed", self.id)
            self._fail(f"InternalError: {error}")
        self._stop_containers()

    def _fail(self, reason: str) -> None:
        """Record a start failure."""
        with self._lock:
            self.stop_code, self.stopped_reason = "TaskFailedToStart", reason
            self.desired_status = "STOPPED"
        for container in self.containers:
            if container.process is None:
                container.reason = reason[:1024]

    def _start_processes(self) -> None:
        """Start one process per container, output going to its reader thread."""
        for container in self.containers:
            plan = container.plan
            try:
                container.process = subprocess.Popen(
                    plan.argv,
                    cwd=plan.cwd,
                    env=plan.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, for StopTask signals
                )
            except OSError as error:
                raise StartFailure(
                    f"CannotStartContainerError: Error response from daemon: failed to create "
                    f"task for container: exec: {plan.argv[0]!r}: {error.strerror}"
                ) from error
            orphans.record("ecs task", container.process.pid)  # a crashed daemon's `up` ends it
            container.last_status = "RUNNING"
            container.reader = threading.Thread(
                target=self._read, args=(container,), name=f"ecs-out-{plan.name}", daemon=True
            )
            container.reader.start()

    def _start_health_checks(self) -> None:
        """Run each container's health check on its schedule while the container runs."""
        for container in self.containers:
            plan, process = container.plan, container.process
            if plan.health is None or process is None:
                continue
            container.health = ContainerHealth(
                plan.health,
                plan.health_argv,
                plan.env,
                plan.cwd,
                self._stop_requested,
                lambda process=process: process.poll() is None,
            )
            container.health.start()

    def _read(self, container: ContainerRun) -> None:
        """Forward each output line to CloudWatch Logs (if awslogs is configured)."""
        process = container.process
        assert process is not None and process.stdout is not None
        options = container.plan.log_options
        key = None
        if options is not None and container.log_stream:
            group = options["awslogs-group"]
            key = (
                self.account_id,
                options.get("awslogs-region") or self.region,
                group,
                container.log_stream,
            )
        for raw in process.stdout:
            if key is not None:
                self.logs.add(key, raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        process.stdout.close()

    def _wait_listening(self) -> None:
        """Stay ACTIVATING until every mapped port accepts connections (or a process exits)."""
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        waiting = {
            port: container
            for container in self.containers
            for port in container.host_ports.values()
        }
        while waiting and time.monotonic() < deadline and not self._stop_requested.is_set():
            for port, container in list(waiting.items()):
                if container.process is None or container.process.poll() is not None:
                    return  # it exited: _watch records how
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    del waiting[port]
            if waiting:
                time.sleep(0.05)

    def _watch(self) -> None:
        """Wait for StopTask or for an essential container to exit."""
        while not self._stop_requested.wait(0.05):
            exited = [
                c for c in self.containers if c.process is not None and c.process.poll() is not None
            ]
            for container in exited:
                self._record_exit(container)
            if any(c.plan.essential for c in exited):
                with self._lock:
                    if self.stop_code is None:
                        self.stop_code = "EssentialContainerExited"
                        self.stopped_reason = "Essential container in task exited"
                    self.desired_status = "STOPPED"
                return

    def _stop_containers(self) -> None:
        """DEACTIVATING → STOPPING (SIGTERM, SIGKILL after stopTimeout) → ... → STOPPED."""
        with self._lock:
            self.desired_status = "STOPPED"
        self.times["stoppingAt"] = utc_now()
        self._set("DEACTIVATING")
        self._set("STOPPING", pause=False)
        for container in self.containers:
            if container.process is not None and container.process.poll() is None:
                _signal_group(container.process, signal.SIGTERM)
        for container in self.containers:
            process = container.process
            if process is None:
                container.last_status = "STOPPED"
                continue
            try:
                process.wait(timeout=container.plan.stop_timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)
            self._record_exit(container)
            orphans.forget(process.pid)
            if container.reader is not None:
                container.reader.join(timeout=5)
        self.times["executionStoppedAt"] = utc_now()
        self.logs.flush()
        time.sleep(STEP_S)
        self._set("DEPROVISIONING")
        self.times["stoppedAt"] = utc_now()
        self._set("STOPPED", pause=False)

    def _record_exit(self, container: ContainerRun) -> None:
        """Exit code as Docker reports it (128 + signal for a signalled process)."""
        process = container.process
        if process is None or process.returncode is None or container.exit_code is not None:
            return
        code = process.returncode
        container.exit_code = 128 - code if code < 0 else code
        container.last_status = "STOPPED"
        # Other containers of the task are stopped when an essential one exits.
        _signal_group(process, signal.SIGKILL)  # leftovers of its process group


def _signal_group(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Send a signal to a container's process group, ignoring ones already gone."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def network_interfaces(task: dict[str, Any]) -> list[dict[str, str]]:
    """The ENI that moto attached to a task dict, as containers[].networkInterfaces."""
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
