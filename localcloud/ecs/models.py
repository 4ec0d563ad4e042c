"""The scheduler's records of ECS services: services, their deployments, tasks being stopped."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..registry import RequestContext

MAX_EVENTS = 100  # DescribeServices returns at most the 100 newest events


class StartFailure(Exception):
    """A task cannot start: stoppedReason text for the task (stopCode TaskFailedToStart)."""


def utc_now() -> dt.datetime:
    """The current UTC time (AWS's timestamps)."""
    return dt.datetime.now(dt.UTC)


def new_deployment_id() -> str:
    """A deployment id in AWS's format (`ecs-svc/` and 19 digits)."""
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"


@dataclass
class Deployment:
    """One deployment of a service: a task definition and the tasks started for it."""

    id: str
    task_definition: str
    created_at: dt.datetime = field(default_factory=utc_now)
    updated_at: dt.datetime = field(default_factory=utc_now)
    status: str = "PRIMARY"
    rollout_state: str = "IN_PROGRESS"
    failed_tasks: int = 0
    tasks: list[str] = field(default_factory=list)


@dataclass
class Draining:
    """A task the scheduler is stopping: deregistered, stopped when its targets drained."""

    stop_at: float
    reason: str


@dataclass
class LocalService:
    """The scheduler's view of one service."""

    arn: str
    name: str
    cluster_arn: str
    context: RequestContext
    desired_count: int
    launch_type: str
    network_configuration: dict[str, Any]
    load_balancers: list[dict[str, Any]]
    grace_s: float
    propagate_tags: list[dict[str, str]]
    deployments: list[Deployment]
    status: str = "ACTIVE"
    events: list[dict[str, Any]] = field(default_factory=list)
    registered: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    draining: dict[str, Draining] = field(default_factory=dict)
    consecutive_failures: int = 0
    next_start_at: float = 0.0
    steady: bool = False
    counted: set[str] = field(default_factory=set)  # stopped tasks already handled
    synced: tuple[Any, ...] | None = None  # last written into moto's record (skip repeats)
    client_token: str | None = None  # CreateService's clientToken: a repeat returns the service

    @property
    def primary(self) -> Deployment:
        """The PRIMARY deployment (the first)."""
        return self.deployments[0]

    @property
    def cluster_name(self) -> str:
        """The cluster's name (the end of its ARN)."""
        return self.cluster_arn.rsplit("/", 1)[-1]

    def task_arns(self) -> set[str]:
        """Every task the service started (all deployments)."""
        return {arn for deployment in self.deployments for arn in deployment.tasks}

    def event(self, message: str) -> None:
        """Add a service event, newest first, as DescribeServices lists them."""
        self.events.insert(
            0,
            {
                "id": str(uuid.uuid4()),
                "createdAt": utc_now(),
                "message": f"(service {self.name}) {message}",
            },
        )
        del self.events[MAX_EVENTS:]
