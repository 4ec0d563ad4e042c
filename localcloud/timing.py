"""The AWS timing profile: AWS's consistency and latency rules that code must tolerate.

By default the local cloud answers at once and is consistent at once, which is what makes it
quick, and also what lets a notebook pass locally that would stop on AWS: a role used a second
after it was created, a metric read a second after it was published. With the profile on
(`python -m localcloud up --timing aws`, or LOCALCLOUD_TIMING=aws), providers apply the rules
below, each delay multiplied by LOCALCLOUD_TIMING_SCALE (default 0.2) so a run stays short:

- An IAM role cannot be assumed by Lambda or ECS for 10 s (IAM_PROPAGATION_S) after it was
  created: IAM is eventually consistent
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
- The first ECS CreateCluster or RunTask of an account fails while ECS creates its
  service-linked role, as in a new AWS account
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html).
- CloudWatch data become readable 60 s (METRIC_INGESTION_S) after they arrive: AWS's service
  metrics arrive a minute or more after what they measure (reported behaviour). The delay of
  up to 15 minutes before a new metric appears in ListMetrics
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html)
  is not applied.
- A new API Gateway stage answers 404 (HTTP API) or 403 (REST API) for 10 s
  (API_STAGE_READY_S), as a stage just created can (reported behaviour).
- Resources take AWS's time to be created and deleted (LIFECYCLES, AWS's typical seconds),
  scaled by the profile's scale times LIFECYCLE_FACTOR (0.1, or LOCALCLOUD_LIFECYCLE_FACTOR;
  0 turns these rules off), so that code which does not wait for a status fails while a
  whole course run stays short (at 0.2, a 10-minute AWS creation takes 12 s). While a
  resource is not ready, the calls AWS refuses in that state are refused with AWS's error;
  a deleted resource is described as deleting, then is gone:
  - an Aurora DB cluster is `creating` for 2 minutes and `deleting` for 2 minutes, one of
    its DB instances `creating` for 10 and `deleting` for 5 (Aurora and instance creation
    "can take 10-20 minutes", AWS's own Aurora skill in
    https://github.com/aws/agent-toolkit-for-aws; statuses:
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html);
    ModifyDBCluster, EnableHttpEndpoint and DeleteDBCluster answer
    InvalidDBClusterStateFault meanwhile, and the Data API cannot reach it;
  - an RDS Proxy is `creating` for 5 minutes (reported behaviour) and refuses connections
    meanwhile; a registered target is REGISTERING for 2 minutes before AVAILABLE
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_TargetHealth.html); a
    deleted proxy is `deleting` for 2 minutes;
  - an ElastiCache Serverless cache is `creating` for 1 minute ("create a cache in under a
    minute", ElastiCache Serverless's launch notes, reported in
    https://github.com/aws/aws-sdk-php/releases/tag/3.290.1) and `deleting` for 2; its
    endpoint refuses connections and Modify/Delete answer InvalidServerlessCacheStateFault
    meanwhile;
  - an Application Load Balancer is `provisioning` for 3 minutes before `active`
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_LoadBalancerState.html)
    and its listeners do not serve meanwhile;
  - a VPC Lambda function's network interfaces take 90 s to create (the function is
    `Pending`, and Invoke answers ResourceConflictException) and are released 20 minutes
    after the function is deleted or detached; until then they hold the function's
    security groups, and DeleteSecurityGroup answers DependencyViolation (reported: the
    Lambda team's expected Hyperplane ENI deletion times in
    https://github.com/hashicorp/terraform-provider-aws/pull/10114);
  - an event source mapping is `Creating` for 1 minute before `Enabled` and `Deleting` for
    1 minute (reported behaviour;
    https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).

Each rule is listed on the coverage page with the provider that applies it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

IAM_PROPAGATION_S = 10.0
METRIC_INGESTION_S = 60.0
API_STAGE_READY_S = 10.0
DEFAULT_SCALE = 0.2
PROFILES = ("local", "aws")
LIFECYCLE_FACTOR = 0.1  # lifecycle durations: scale x this (the status matters, not the wait)


@dataclass(frozen=True)
class Durations:
    """AWS's typical seconds to create and to delete one kind of resource."""

    create_s: float
    delete_s: float


LIFECYCLES = {
    "aurora cluster": Durations(create_s=120, delete_s=120),
    "aurora instance": Durations(create_s=600, delete_s=300),
    "rds proxy": Durations(create_s=300, delete_s=120),
    "rds proxy target": Durations(create_s=120, delete_s=0),
    "serverless cache": Durations(create_s=60, delete_s=120),
    "load balancer": Durations(create_s=180, delete_s=0),
    "lambda network interfaces": Durations(create_s=90, delete_s=1200),
    "event source mapping": Durations(create_s=60, delete_s=60),
}


@dataclass(frozen=True)
class TimingProfile:
    """Which timing rules apply, and how AWS's delays are scaled."""

    name: str = "local"
    scale: float = DEFAULT_SCALE
    lifecycle_factor: float = LIFECYCLE_FACTOR

    @property
    def aws(self) -> bool:
        """True when AWS's consistency and latency rules apply."""
        return self.name == "aws"

    def delay(self, aws_seconds: float) -> float:
        """A delay AWS has, as the local cloud applies it (0 unless the profile is on)."""
        return aws_seconds * self.scale if self.aws else 0.0

    def lifecycle_delay(self, aws_seconds: float) -> float:
        """A creation or deletion time of AWS, as the local cloud applies it (0 with it off)."""
        return self.delay(aws_seconds) * self.lifecycle_factor

    def describe(self) -> str:
        """'local', or 'aws x0.2' (with ' lifecycle x0' when that factor is not the default)."""
        if not self.aws:
            return "local"
        own = self.lifecycle_factor != LIFECYCLE_FACTOR
        return f"aws x{self.scale:g}" + (f" lifecycle x{self.lifecycle_factor:g}" if own else "")


def timing_profile() -> TimingProfile:
    """The profile the environment asks for (LOCALCLOUD_TIMING, LOCALCLOUD_TIMING_SCALE)."""
    name = os.environ.get("LOCALCLOUD_TIMING", "local") or "local"
    if name not in PROFILES:
        raise ValueError(f"LOCALCLOUD_TIMING must be one of {', '.join(PROFILES)}, not {name!r}")
    text = os.environ.get("LOCALCLOUD_TIMING_SCALE", "") or str(DEFAULT_SCALE)
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not 0 < scale <= 1:
        raise ValueError(f"LOCALCLOUD_TIMING_SCALE must be a number in (0, 1], not {text!r}")
    factor = os.environ.get("LOCALCLOUD_LIFECYCLE_FACTOR", "") or str(LIFECYCLE_FACTOR)
    try:
        lifecycle_factor = float(factor)
    except ValueError:
        lifecycle_factor = -1.0
    if not 0 <= lifecycle_factor <= 1:
        raise ValueError(f"LOCALCLOUD_LIFECYCLE_FACTOR must be a number in [0, 1], not {factor!r}")
    return TimingProfile(name, scale, lifecycle_factor)


class Lifecycle:
    """When each resource of one kind is done creating and deleting (AWS timing profile).

    A provider calls `created(key)` when it creates a resource and `deleted(key, shown)` when
    it deletes one (`shown`: what describe should keep answering, with a deleting status);
    `creating(key)` and `deleting(key)` say whether that is still going on. With the profile
    off every duration is 0: nothing is ever creating or deleting.
    """

    def __init__(self, timing: TimingProfile, kind: str) -> None:
        self.timing = timing
        self.durations = LIFECYCLES[kind]
        self._lock = threading.Lock()
        self._ready_at: dict[Hashable, float] = {}
        self._gone_at: dict[Hashable, tuple[float, Any]] = {}

    @property
    def create_s(self) -> float:
        """Seconds a new resource is creating."""
        return self.timing.lifecycle_delay(self.durations.create_s)

    @property
    def delete_s(self) -> float:
        """Seconds a deleted resource is deleting."""
        return self.timing.lifecycle_delay(self.durations.delete_s)

    def created(self, key: Hashable, started: float | None = None) -> None:
        """A resource was created now (or at the monotonic time `started`)."""
        if self.create_s > 0:
            with self._lock:
                self._ready_at[key] = (time.monotonic() if started is None else started) + (
                    self.create_s
                )
                self._gone_at.pop(key, None)

    def creating(self, key: Hashable) -> bool:
        """Whether the resource is still being created."""
        with self._lock:
            ready = self._ready_at.get(key)
            if ready is not None and time.monotonic() >= ready:
                del self._ready_at[key]
                ready = None
            return ready is not None

    def seconds_left(self, key: Hashable) -> float:
        """Seconds until the resource is created (0 when it is)."""
        with self._lock:
            return max(0.0, self._ready_at.get(key, 0.0) - time.monotonic())

    def deleted(self, key: Hashable, shown: Any = None) -> None:
        """A resource was deleted now; `shown` is what describes it until it is gone."""
        with self._lock:
            self._ready_at.pop(key, None)
            if self.delete_s > 0:
                self._gone_at[key] = (time.monotonic() + self.delete_s, shown)

    def deleting(self, key: Hashable) -> Any:
        """What was kept of a resource still being deleted (`True` if nothing), else None."""
        with self._lock:
            self._expire()
            found = self._gone_at.get(key)
        if found is None:
            return None
        return True if found[1] is None else found[1]

    def still_deleting(self) -> dict[Hashable, Any]:
        """Every resource still being deleted, with what was kept of it."""
        with self._lock:
            self._expire()
            return {key: shown for key, (_, shown) in self._gone_at.items()}

    def forget(self, key: Hashable) -> None:
        """Drop what is known of a resource (reset, or a failed creation)."""
        with self._lock:
            self._ready_at.pop(key, None)
            self._gone_at.pop(key, None)

    def clear(self) -> None:
        """Forget every resource (the local cloud was reset)."""
        with self._lock:
            self._ready_at.clear()
            self._gone_at.clear()

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, (gone, _) in self._gone_at.items() if now >= gone]:
            del self._gone_at[key]
