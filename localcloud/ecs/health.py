"""Container health checks: a container definition's `healthCheck`, run as Docker runs it.

The command (`["CMD-SHELL", "curl -f http://localhost/ || exit 1"]` or `["CMD", "python",
"check.py"]`) runs in the container's environment and working directory every `interval`
seconds from the container's start; exit code 0 passes. A container is UNKNOWN until a check
passes (HEALTHY) or `retries` checks in a row fail (UNHEALTHY); failures during `startPeriod`
do not count until a check has passed. A check that runs longer than `timeout` fails.
Defaults and bounds are AWS's (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html):
interval 30 s (5-300), timeout 5 s (2-60), retries 3 (1-10), startPeriod off (0-300).

The task's health is that of its essential containers that have a health check: UNHEALTHY
if one is, HEALTHY if all are, UNKNOWN otherwise. A task run on its own keeps running whatever
its health; the service scheduler replaces a service's UNHEALTHY task
("Task failed container health checks").
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocols import ServiceError

# name: (default, minimum, maximum) in seconds, or a count for retries
BOUNDS: dict[str, tuple[int, int, int]] = {
    "interval": (30, 5, 300),
    "timeout": (5, 2, 60),
    "retries": (3, 1, 10),
    "startPeriod": (0, 0, 300),
}
KINDS = ("CMD", "CMD-SHELL")


@dataclass(frozen=True)
class HealthCheckSpec:
    """A container's health check with AWS's defaults filled in."""

    command: tuple[str, ...]
    interval: float
    timeout: float
    retries: int
    start_period: float

    @property
    def shell(self) -> bool:
        """True for CMD-SHELL (run by /bin/sh -c), False for CMD (run directly)."""
        return self.command[0] == "CMD-SHELL"


def health_check_spec(definition: dict[str, Any]) -> HealthCheckSpec | None:
    """The container definition's health check, or None when it has none."""
    check = definition.get("healthCheck")
    if not check:
        return None
    values = {name: check.get(name) for name in BOUNDS}
    for name, (default, _, _) in BOUNDS.items():
        if values[name] is None:
            values[name] = default
    return HealthCheckSpec(
        command=tuple(check.get("command") or ()),
        interval=float(values["interval"]),
        timeout=float(values["timeout"]),
        retries=int(values["retries"]),
        start_period=float(values["startPeriod"]),
    )


def check_health_checks(container_definitions: list[dict[str, Any]]) -> None:
    """RegisterTaskDefinition: refuse health checks outside AWS's documented bounds."""
    for container in container_definitions:
        check = container.get("healthCheck")
        if not check:
            continue
        name = container.get("name", "")
        command = check.get("command") or []
        if not command or command[0] not in KINDS or len(command) < 2:
            raise _invalid(
                name, "'command' must start with CMD or CMD-SHELL and name a command to run"
            )
        for field, (_, low, high) in BOUNDS.items():
            value = check.get(field)
            if value is not None and not low <= int(value) <= high:
                unit = "" if field == "retries" else " seconds"
                raise _invalid(name, f"'{field}' must be between {low} and {high}{unit}")


def _invalid(container: str, detail: str) -> ServiceError:
    # AWS does not document this message; the wording is the local cloud's own.
    return ServiceError(
        "ClientException",
        f"Invalid 'healthCheck' setting for container '{container}': {detail}.",
        400,
    )


class ContainerHealth:
    """Runs one container's health check on its schedule, from its own thread."""

    def __init__(
        self,
        spec: HealthCheckSpec,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        stopped: threading.Event,
        alive: Callable[[], bool],
    ) -> None:
        self.spec = spec
        self.status = "UNKNOWN"
        self._argv, self._env, self._cwd = argv, env, cwd
        self._stopped, self._alive = stopped, alive
        self._thread = threading.Thread(target=self._run, name="ecs-health", daemon=True)

    def start(self) -> None:
        """Begin checking (the first check runs one interval after the container started)."""
        self._thread.start()

    def _run(self) -> None:
        started, failures = time.monotonic(), 0
        while not self._stopped.wait(self.spec.interval):
            if not self._alive():
                return
            if self._passes():
                failures, self.status = 0, "HEALTHY"
                continue
            starting = time.monotonic() - started < self.spec.start_period
            if starting and self.status != "HEALTHY":
                continue  # failures in the start period count only after a first pass
            failures += 1
            if failures >= self.spec.retries:
                self.status = "UNHEALTHY"

    def _passes(self) -> bool:
        """Run the command once: True for exit code 0 within the timeout."""
        try:
            process = subprocess.Popen(
                self._argv,
                cwd=self._cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own group, so a timeout kills its children too
            )
        except OSError:
            return False  # the command does not exist in the image: the check fails
        try:
            return process.wait(timeout=self.spec.timeout) == 0
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return False


def task_health(statuses: list[str]) -> str:
    """The task's healthStatus from its essential containers' that have health checks."""
    if "UNHEALTHY" in statuses:
        return "UNHEALTHY"
    if statuses and all(status == "HEALTHY" for status in statuses):
        return "HEALTHY"
    return "UNKNOWN"
