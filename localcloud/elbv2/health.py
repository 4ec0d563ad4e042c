"""Targets, their health state machine, and the background health checker.

A target group's registered targets live here with AWS's states and reason codes. One
scheduler thread looks at every group a few times a second: groups that no listener rule
uses have `unused` targets and no checks; others get an HTTP GET on the health-check path
every HealthCheckIntervalSeconds per target, run by a small thread pool so that a slow
target does not hold up the rest. Draining targets are forgotten once their deregistration
delay has passed. After each interval a group publishes HealthyHostCount/UnHealthyHostCount.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .rules import code_matches

log = logging.getLogger("localcloud.elbv2")

Address = tuple[str, int]
TICK_SECONDS = 0.2

DESCRIPTIONS = {
    "Elb.RegistrationInProgress": "Target registration is in progress",
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Target.Timeout": "Request timed out",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.NotRegistered": "Target is not registered to the target group",
    "Target.NotInUse": "Target group is not configured to receive traffic from the load balancer",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
    "Target.HealthCheckDisabled": "Health checks are disabled",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one health check: passed, or a reason code and description."""

    ok: bool
    reason: str = ""
    description: str = ""


PASSED = CheckResult(True)
TIMED_OUT = CheckResult(False, "Target.Timeout", DESCRIPTIONS["Target.Timeout"])
REFUSED = CheckResult(False, "Target.FailedHealthChecks", DESCRIPTIONS["Target.FailedHealthChecks"])


@dataclass
class HealthSettings:
    """A target group's health-check configuration, as moto describes it."""

    enabled: bool = True
    path: str = "/"
    port: str = "traffic-port"
    interval: float = 30.0
    timeout: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"
    deregistration_delay: float = 300.0

    @classmethod
    def from_moto(cls, group: dict[str, Any], attributes: dict[str, str]) -> HealthSettings:
        """Settings from DescribeTargetGroups and DescribeTargetGroupAttributes results."""
        return cls(
            enabled=bool(group.get("HealthCheckEnabled", True)),
            path=group.get("HealthCheckPath") or "/",
            port=str(group.get("HealthCheckPort") or "traffic-port"),
            interval=float(group.get("HealthCheckIntervalSeconds") or 30),
            timeout=float(group.get("HealthCheckTimeoutSeconds") or 5),
            healthy_threshold=int(group.get("HealthyThresholdCount") or 5),
            unhealthy_threshold=int(group.get("UnhealthyThresholdCount") or 2),
            matcher=(group.get("Matcher") or {}).get("HttpCode") or "200",
            deregistration_delay=float(
                attributes.get("deregistration_delay.timeout_seconds", "300")
            ),
        )

    def check_port(self, traffic_port: int) -> int:
        """The port health checks go to."""
        return traffic_port if self.port == "traffic-port" else int(self.port)


@dataclass
class Target:
    """One registered target and where it is in AWS's health state machine."""

    id: str
    port: int
    availability_zone: str | None = None
    state: str = "initial"
    reason: str | None = "Elb.RegistrationInProgress"
    passes: int = 0
    fails: int = 0
    next_check: float = 0.0
    checking: bool = False
    drain_until: float | None = None
    description: str | None = field(default=None)

    def set(self, state: str, reason: str | None = None, description: str | None = None) -> None:
        """Move to a state; the description defaults to the reason's standard text."""
        self.state, self.reason = state, reason
        self.description = description or (DESCRIPTIONS.get(reason, "") if reason else None)

    def restart(self, now: float) -> None:
        """Back to `initial`, with a check due at once (registration, or traffic resumes)."""
        self.set("initial", "Elb.RegistrationInProgress")
        self.passes = self.fails = 0
        self.next_check = now


def advance(target: Target, result: CheckResult, healthy: int, unhealthy: int) -> None:
    """Apply one health-check result to a target (AWS: one pass after registration)."""
    if target.state in ("draining", "unused", "unavailable"):
        return
    if result.ok:
        target.passes, target.fails = target.passes + 1, 0
        if target.state == "initial" or (target.state == "unhealthy" and target.passes >= healthy):
            target.set("healthy")
        return
    target.passes, target.fails = 0, target.fails + 1
    if target.state == "unhealthy" or target.fails >= unhealthy:
        target.set("unhealthy", result.reason, result.description)
    elif target.state == "initial":
        target.set("initial", "Elb.InitialHealthChecking")


class TargetGroupState:
    """The registered targets of one target group, with round-robin selection."""

    def __init__(self, arn: str, region: str, settings: HealthSettings) -> None:
        self.arn, self.region, self.settings = arn, region, settings
        self.target_type = "ip"
        self.traffic_port = 80  # the group's Port: targets registered without one use it
        self.lock = threading.Lock()
        self.targets: dict[Address, Target] = {}
        self.load_balancers: frozenset[str] = frozenset()
        self.next_publish = 0.0
        self._turn = 0

    def register(self, targets: list[tuple[str, int, str | None]], now: float) -> None:
        """Add targets; re-registering a draining target starts it over."""
        with self.lock:
            for target_id, port, zone in targets:
                found = self.targets.get((target_id, port))
                if found is not None and found.state != "draining":
                    continue
                target = Target(target_id, port, zone)
                self._initial_state(target, now)
                self.targets[(target_id, port)] = target

    def deregister(self, targets: list[tuple[str, int]], now: float) -> None:
        """Start draining; the target is forgotten after the deregistration delay."""
        with self.lock:
            for key in targets:
                target = self.targets.get(key)
                if target is not None and target.state != "draining":
                    target.set("draining", "Target.DeregistrationInProgress")
                    target.drain_until = now + self.settings.deregistration_delay

    def _initial_state(self, target: Target, now: float) -> None:
        """The state of a newly registered (or newly used) target."""
        if not self.load_balancers:
            target.set("unused", "Target.NotInUse")
        elif not self.settings.enabled:
            target.set("unavailable", "Target.HealthCheckDisabled")
        else:
            target.restart(now)

    def set_usage(self, load_balancers: frozenset[str], now: float) -> None:
        """Follow listener changes: unused targets start checking, or stop when unused."""
        with self.lock:
            was_used, self.load_balancers = bool(self.load_balancers), load_balancers
            if was_used == bool(load_balancers):
                return
            for target in self.targets.values():
                if target.state != "draining":
                    self._initial_state(target, now)

    def apply_settings(self, settings: HealthSettings, now: float) -> None:
        """New health-check settings (ModifyTargetGroup); toggling checks restarts targets."""
        with self.lock:
            toggled = settings.enabled != self.settings.enabled
            self.settings = settings
            if toggled:
                for target in self.targets.values():
                    if target.state != "draining":
                        self._initial_state(target, now)

    def due(self, now: float) -> list[Target]:
        """Forget drained targets; return targets whose next check is due (marked in flight)."""
        with self.lock:
            for key, target in list(self.targets.items()):
                if target.drain_until is not None and target.drain_until <= now:
                    del self.targets[key]
            if not self.load_balancers or not self.settings.enabled:
                return []
            found = []
            for target in self.targets.values():
                if target.state != "draining" and not target.checking and target.next_check <= now:
                    target.checking = True
                    target.next_check = now + self.settings.interval
                    found.append(target)
            return found

    def record(self, target: Target, result: CheckResult) -> None:
        """Apply a finished check, unless the target was deregistered meanwhile."""
        with self.lock:
            target.checking = False
            if self.targets.get((target.id, target.port)) is target:
                advance(
                    target,
                    result,
                    self.settings.healthy_threshold,
                    self.settings.unhealthy_threshold,
                )

    def choose(self) -> Target | None:
        """Round robin over healthy targets; fail open to all if none is healthy."""
        with self.lock:
            live = [t for t in self.targets.values() if t.state != "draining"]
            if not live:
                return None
            healthy = [t for t in live if t.state in ("healthy", "unavailable")]
            pool = healthy or live  # AWS fails open when no target is healthy
            self._turn += 1
            return pool[self._turn % len(pool)]

    def counts(self) -> tuple[int, int]:
        """(healthy, unhealthy) targets, for HealthyHostCount and UnHealthyHostCount."""
        with self.lock:
            states = [t.state for t in self.targets.values()]
        return states.count("healthy"), states.count("unhealthy")

    def describe(self, wanted: list[tuple[str, int]] | None) -> list[dict[str, Any]]:
        """DescribeTargetHealth's TargetHealthDescriptions, optionally for given targets."""
        with self.lock:
            keys = list(self.targets) if wanted is None else wanted
            found = []
            for key in keys:
                target = self.targets.get(key)
                entry: dict[str, Any] = {
                    "Target": {"Id": key[0], "Port": key[1]},
                    "HealthCheckPort": str(self.settings.check_port(key[1])),
                }
                if target is None:
                    health = {
                        "State": "unused",
                        "Reason": "Target.NotRegistered",
                        "Description": DESCRIPTIONS["Target.NotRegistered"],
                    }
                else:
                    if target.availability_zone:
                        entry["Target"]["AvailabilityZone"] = target.availability_zone
                    health = {"State": target.state}
                    if target.reason:
                        health["Reason"] = target.reason
                        health["Description"] = target.description or ""
                entry["TargetHealth"] = health
                found.append(entry)
            return found


def probe(
    address: Address | None, host_header: str, path: str, timeout: float, matcher: str
) -> CheckResult:
    """One health check: GET the path and compare the status code with the matcher."""
    if address is None:  # an address that cannot be reached from this machine
        return TIMED_OUT
    connection = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        connection.request(
            "GET",
            path,
            headers={
                "Host": host_header,
                "User-Agent": "ELB-HealthChecker/2.0",
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        response.read()
    except TimeoutError:
        return TIMED_OUT
    except (OSError, http.client.HTTPException):
        return REFUSED
    finally:
        connection.close()
    if code_matches(matcher, response.status):
        return PASSED
    return CheckResult(
        False,
        "Target.ResponseCodeMismatch",
        f"Health checks failed with these codes: [{response.status}]",
    )


class HealthChecker:
    """One scheduler thread and a few workers that keep every target group's health current."""

    def __init__(
        self,
        groups: Callable[[], list[TargetGroupState]],
        usage: Callable[[], dict[str, frozenset[str]]],
        resolve: Callable[[str, int], Address | None],
        publish: Callable[[TargetGroupState], None],
    ) -> None:
        self._groups, self._usage, self._resolve, self._publish = groups, usage, resolve, publish
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the scheduler if it is not running."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="elb-health")
            self._thread = threading.Thread(target=self._run, name="elb-health", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Look at the groups now (a registration wants its first check right away)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the scheduler and drop queued checks."""
        with self._lock:
            thread, pool, self._thread, self._pool = self._thread, self._pool, None, None
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout=5)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        """The scheduler loop."""
        while not self._stop.is_set():
            try:
                self.tick(time.monotonic())
            except Exception:  # one bad round must not end health checking for good
                log.exception("health-check round failed")
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    def tick(self, now: float) -> None:
        """One round: follow listener usage, submit due checks, publish host counts."""
        usage = self._usage()
        pool = self._pool
        for group in self._groups():
            group.set_usage(usage.get(group.arn, frozenset()), now)
            for target in group.due(now):
                if pool is None:
                    return
                pool.submit(self._check, group, target)
            if group.load_balancers and now >= group.next_publish:
                group.next_publish = now + group.settings.interval
                self._publish(group)

    def _check(self, group: TargetGroupState, target: Target) -> None:
        """Run one check in a worker thread and record it."""
        settings = group.settings
        port = settings.check_port(target.port)
        try:
            result = probe(
                self._resolve(target.id, port),
                f"{target.id}:{port}",
                settings.path,
                settings.timeout,
                settings.matcher,
            )
        except Exception:  # a resolver bug counts as a failed check, not a dead worker
            log.exception("health check of %s:%s failed", target.id, port)
            result = REFUSED
        group.record(target, result)
