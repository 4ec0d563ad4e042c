"""The ELBv2 provider: Application Load Balancers that really route HTTP on this machine.

moto stays the control plane (load balancers, listeners, rules, target groups and their
attributes). This provider lets moto serve each call it intercepts and then adds the data
plane: every HTTP or HTTPS listener gets a local HTTP server on 127.0.0.1 (an OS-chosen
port, see `endpoints()` and `lab.url_for`) that evaluates the listener's rules (path-pattern,
host-header, http-request-method, http-header, query-string; forward with weights,
fixed-response, redirect) and forwards to registered targets round robin, with AWS's
X-Forwarded-For/-Proto/-Port and X-Amzn-Trace-Id headers and its own 502/503/504 pages.
Targets are health-checked in the background with the target group's settings and AWS's
states and reason codes, which DescribeTargetHealth reports; deregistered targets drain for
`deregistration_delay.timeout_seconds`. Requests publish AWS/ApplicationELB metrics
(RequestCount, TargetResponseTime, HTTPCode_Target_*, HTTPCode_ELB_*) to the local
CloudWatch, batched once a second; health rounds publish HealthyHostCount/UnHealthyHostCount.

Where the local cloud differs from AWS:
- Listeners serve on 127.0.0.1 at OS-chosen ports, not on the load balancer's DNS name at
  port 80/443; `lab.url_for(load_balancer)` gives the local URL. HTTPS listeners are served
  as plain HTTP (no certificates, no TLS), though targets see X-Forwarded-Proto: https.
- Target addresses: a target (IP, port) is reached through the ECS provider's mapping of a
  local task's private IP and container port, when it knows the pair; a loopback IP
  (127.x.x.x) is reached directly; any other address is unreachable, so its health checks
  fail at once with Target.Timeout (AWS waits for the timeout) and requests get a 504 at
  once. Instance targets are unreachable; Lambda targets are not invoked (502).
- A redirect whose host is the request's host and whose port is one of this load
  balancer's listener ports points at that listener's local port (plain http).
- No availability zones or nodes: no cross-zone behaviour, no per-AZ metrics, one
  round-robin sequence per target group; the load_balancing.algorithm, slow start,
  stickiness, and authenticate-* actions are not run; source-ip conditions never match.
- Health checks are plain HTTP GETs (HTTPS health checks too) and are not jittered; a
  target group that no listener uses has `unused` targets (Target.NotInUse) and no checks.
- No LCUs, connection limits, request size limits (400/413/463 answers), WebSocket or
  HTTP/2; idle_timeout.timeout_seconds is applied as the upstream read timeout (504).
  X-Forwarded-For is always appended (the preserve/remove modes are not applied).
- The 504 page and redirect bodies reuse AWS's error-page template, and fixed responses
  carry `; charset=utf-8` in their Content-Type [unconfirmed].
- Metrics reach the local CloudWatch within about a second, with the LoadBalancer and
  LoadBalancer+TargetGroup dimensions only (AWS: one-minute data, more dimension sets);
  RequestCount counts every request, including those the load balancer answers itself.
- Network load balancers and TCP/UDP/TLS listeners are stored by moto but not served.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from ..registry import Provider, RequestContext
from .health import Address, HealthChecker, HealthSettings, TargetGroupState
from .listener import Listener, UpstreamPool
from .metrics import RequestMetrics, publish_host_counts
from .rules import forwarded_groups, sort_rules

log = logging.getLogger("localcloud.elbv2")

SERVED_PROTOCOLS = ("HTTP", "HTTPS")
# Rule changes pass through this provider and invalidate the caches at once; the TTL is a
# backstop. The health scheduler refreshes caches early, so requests rarely wait for moto.
RULES_TTL_SECONDS = 10.0
DEFAULT_IDLE_TIMEOUT = 60.0


class ElbV2Provider(Provider):
    """Local ALB data plane: listeners, routing, health checks and metrics."""

    service = "elbv2"

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.listeners: dict[str, Listener] = {}
        self.groups: dict[str, TargetGroupState] = {}
        self.pool = UpstreamPool()
        self.metrics = RequestMetrics(self._metric_store)
        self.health = HealthChecker(
            lambda: list(self.groups.values()), self.usage, self.resolve, self._publish_hosts
        )
        self._idle: dict[str, float] = {}
        self._generation = 0
        self._lock = threading.RLock()

    # -- listeners -----------------------------------------------------------------------

    def CreateListener(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto creates the listener; an HTTP(S) listener then serves on a local port."""
        result = self._moto("CreateListener", params, context)
        for item in result.get("Listeners", []):
            if item.get("Protocol") in SERVED_PROTOCOLS:
                listener = Listener(
                    item["ListenerArn"],
                    item["LoadBalancerArn"],
                    int(item["Port"]),
                    item["Protocol"],
                    context.region,
                )
                listener.start(self)
                with self._lock:
                    self.listeners[listener.arn] = listener
        self._rules_changed()
        self.health.start()
        return result

    def DeleteListener(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto deletes the listener; its local server stops and its connections close."""
        result = self._moto("DeleteListener", params, context)
        self._stop_listeners([params.get("ListenerArn", "")])
        return result

    def DeleteLoadBalancer(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto deletes the load balancer; the servers of its listeners stop."""
        arn = params.get("LoadBalancerArn", "")
        result = self._moto("DeleteLoadBalancer", params, context)
        with self._lock:
            owned = [a for a, item in self.listeners.items() if item.load_balancer_arn == arn]
            self._idle.pop(arn, None)
        self._stop_listeners(owned)
        return result

    def ModifyListener(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto changes the listener; the local server follows its port, protocol and actions."""
        result = self._moto("ModifyListener", params, context)
        for item in result.get("Listeners", []):
            listener = self.listeners.get(item.get("ListenerArn", ""))
            if listener is not None:
                listener.port = int(item.get("Port") or listener.port)
                listener.protocol = item.get("Protocol") or listener.protocol
        self._rules_changed()
        return result

    def _stop_listeners(self, arns: list[str]) -> None:
        """Stop and forget local listener servers."""
        with self._lock:
            stopping = [self.listeners.pop(arn) for arn in arns if arn in self.listeners]
        for listener in stopping:
            listener.stop()
        self._rules_changed()

    # -- rules ---------------------------------------------------------------------------

    def CreateRule(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto stores the rule; listeners use it from the next request on."""
        return self._rules_call("CreateRule", params, context)

    def ModifyRule(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto changes the rule; listeners use it from the next request on."""
        return self._rules_call("ModifyRule", params, context)

    def DeleteRule(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto deletes the rule; listeners stop using it from the next request on."""
        return self._rules_call("DeleteRule", params, context)

    def SetRulePriorities(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto reorders the rules; listeners use the new order from the next request on."""
        return self._rules_call("SetRulePriorities", params, context)

    def _rules_call(self, operation: str, params: dict, context: RequestContext) -> dict:
        """A rule change: moto first, then every cached rule list is stale."""
        result = self._moto(operation, params, context)
        self._rules_changed()
        return result

    def _rules_changed(self) -> None:
        """Invalidate the rule caches and let health checking follow the new usage."""
        self._generation += 1
        self.health.wake()

    def rules_for(self, listener: Listener, margin: float = 0.0) -> list[dict[str, Any]]:
        """The listener's rules in evaluation order (cached; moto's DescribeRules)."""
        cached = listener.rules_cache
        now = time.monotonic()
        if cached is not None and cached[0] == self._generation and cached[1] - margin > now:
            return cached[2]
        generation = self._generation
        try:
            found: list[dict[str, Any]] = []
            params: dict[str, Any] = {"ListenerArn": listener.arn}
            while True:
                page = self.cloud.moto.call("elbv2", "DescribeRules", params, listener.region)
                found += page.get("Rules", [])
                if not page.get("NextMarker"):
                    break
                params["Marker"] = page["NextMarker"]
        except Exception:
            if cached is None:
                raise
            return cached[2]  # keep routing with the last known rules
        ordered = sort_rules(found)
        listener.rules_cache = (generation, now + RULES_TTL_SECONDS, ordered)
        return ordered

    def usage(self) -> dict[str, frozenset[str]]:
        """Target group ARN -> load balancers whose listener rules forward to it."""
        found: dict[str, set[str]] = defaultdict(set)
        for listener in list(self.listeners.values()):
            try:
                listener_rules = self.rules_for(listener, margin=RULES_TTL_SECONDS / 2)
            except Exception:  # deleted meanwhile
                continue
            for arn in forwarded_groups(listener_rules):
                found[arn].add(listener.load_balancer_arn)
        return {arn: frozenset(lbs) for arn, lbs in found.items()}

    # -- targets -------------------------------------------------------------------------

    def RegisterTargets(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto records the targets; health checks start (state `initial`) right away."""
        result = self._moto("RegisterTargets", params, context)
        group = self._group(params["TargetGroupArn"], context.region)
        now = time.monotonic()
        group.set_usage(self.usage().get(group.arn, frozenset()), now)  # a listener may be new
        default_port = group.traffic_port
        group.register(
            [
                (t["Id"], int(t.get("Port") or default_port), t.get("AvailabilityZone"))
                for t in params.get("Targets", [])
            ],
            now,
        )
        self.health.start()
        self.health.wake()
        return result

    def DeregisterTargets(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto forgets the targets; locally they drain for the deregistration delay."""
        result = self._moto("DeregisterTargets", params, context)
        group = self.groups.get(params["TargetGroupArn"])
        if group is not None:
            keys = [
                (t["Id"], int(t.get("Port") or group.traffic_port))
                for t in params.get("Targets", [])
            ]
            group.deregister(keys, time.monotonic())
        return result

    def DescribeTargetHealth(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """The targets' real health-check states, reasons and descriptions."""
        arn = params["TargetGroupArn"]
        self._moto("DescribeTargetHealth", {"TargetGroupArn": arn}, context)  # validates the ARN
        group = self.groups.get(arn) or self._group(arn, context.region)
        wanted = params.get("Targets")
        keys = None
        if wanted:
            keys = [(t["Id"], int(t.get("Port") or group.traffic_port)) for t in wanted]
        return {"TargetHealthDescriptions": group.describe(keys)}

    def ModifyTargetGroup(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto changes the health-check settings; the checker uses them from now on."""
        result = self._moto("ModifyTargetGroup", params, context)
        self._refresh_group(params["TargetGroupArn"], context.region)
        return result

    def ModifyTargetGroupAttributes(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto stores the attributes; a new deregistration delay applies to later drains."""
        result = self._moto("ModifyTargetGroupAttributes", params, context)
        self._refresh_group(params["TargetGroupArn"], context.region)
        return result

    def DeleteTargetGroup(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto deletes the target group (refused while in use); its local targets go too."""
        result = self._moto("DeleteTargetGroup", params, context)
        with self._lock:
            self.groups.pop(params.get("TargetGroupArn", ""), None)
        return result

    def ModifyLoadBalancerAttributes(self, params: dict, context: RequestContext) -> dict:  # noqa: N802
        """moto stores the attributes; a new idle timeout applies to the next request."""
        result = self._moto("ModifyLoadBalancerAttributes", params, context)
        self._idle.pop(params.get("LoadBalancerArn", ""), None)
        return result

    def _group(self, arn: str, region: str) -> TargetGroupState:
        """The local state of a target group, created from moto's description if new."""
        with self._lock:
            found = self.groups.get(arn)
            if found is not None:
                return found
        settings, described = self._describe_group(arn, region)
        group = TargetGroupState(arn, region, settings)
        group.target_type = described.get("TargetType") or "ip"
        group.traffic_port = int(described.get("Port") or 80)
        group.load_balancers = self.usage().get(arn, frozenset())
        with self._lock:
            return self.groups.setdefault(arn, group)

    def _refresh_group(self, arn: str, region: str) -> None:
        """Re-read a known target group's settings from moto."""
        group = self.groups.get(arn)
        if group is not None:
            settings, _ = self._describe_group(arn, region)
            group.apply_settings(settings, time.monotonic())
            self.health.wake()

    def _describe_group(self, arn: str, region: str) -> tuple[HealthSettings, dict[str, Any]]:
        """Health settings and moto's description of a target group."""
        described = self.cloud.moto.call(
            "elbv2", "DescribeTargetGroups", {"TargetGroupArns": [arn]}, region
        )["TargetGroups"][0]
        attributes = self.cloud.moto.call(
            "elbv2", "DescribeTargetGroupAttributes", {"TargetGroupArn": arn}, region
        ).get("Attributes", [])
        values = {a["Key"]: a.get("Value", "") for a in attributes}
        return HealthSettings.from_moto(described, values), described

    # -- what listeners ask --------------------------------------------------------------

    def group(self, arn: str) -> TargetGroupState | None:
        """A target group with registered targets, or None (no targets: a 503)."""
        return self.groups.get(arn)

    def resolve(self, ip: str, port: int) -> Address | None:
        """Where to connect for a target: the ECS task mapping, a loopback IP, or nowhere."""
        found = self.cloud.addresses.resolve(ip, port)
        if found:
            return found
        if ip.startswith("127."):
            return (ip, port)
        try:
            loopback = ipaddress.ip_address(ip).is_loopback  # ::1
        except ValueError:  # an instance id or a Lambda ARN
            return None
        return (ip, port) if loopback else None

    def idle_timeout(self, load_balancer_arn: str, region: str) -> float:
        """The load balancer's idle_timeout.timeout_seconds (cached; default 60)."""
        found = self._idle.get(load_balancer_arn)
        if found is None:
            found = DEFAULT_IDLE_TIMEOUT
            try:
                attributes = self.cloud.moto.call(
                    "elbv2",
                    "DescribeLoadBalancerAttributes",
                    {"LoadBalancerArn": load_balancer_arn},
                    region,
                ).get("Attributes", [])
                for item in attributes:
                    if item.get("Key") == "idle_timeout.timeout_seconds" and item.get("Value"):
                        found = float(item["Value"])
            except Exception:  # deleted meanwhile: the default will do for this request
                log.debug("no attributes for %s", load_balancer_arn)
            self._idle[load_balancer_arn] = found
        return found

    def local_port(self, load_balancer_arn: str, port: int) -> int | None:
        """The local port of the load balancer's listener on an AWS port, if any."""
        for listener in list(self.listeners.values()):
            if listener.load_balancer_arn == load_balancer_arn and listener.port == port:
                return listener.local_port
        return None

    # -- metrics -------------------------------------------------------------------------

    def _metric_store(self) -> Any:
        """The local CloudWatch metric store."""
        return self.cloud.metrics

    def _publish_hosts(self, group: TargetGroupState) -> None:
        """HealthyHostCount and UnHealthyHostCount per load balancer using the group."""
        healthy, unhealthy = group.counts()
        try:
            publish_host_counts(
                self._metric_store(), group.arn, group.load_balancers, healthy, unhealthy
            )
        except Exception:  # metrics must never stop health checking
            log.exception("could not publish host counts")

    # -- lifecycle and reporting ---------------------------------------------------------

    def _moto(self, operation: str, params: dict, context: RequestContext) -> dict:
        """Let moto serve the operation (its errors are AWS's errors)."""
        return self.cloud.moto.call("elbv2", operation, params, context.region)

    def reset(self) -> None:
        """Stop every listener and health check; forget targets, caches and pending metrics."""
        self.health.stop()
        with self._lock:
            stopping, self.listeners = list(self.listeners.values()), {}
            self.groups = {}
            self._idle = {}
        for listener in stopping:
            listener.stop()
        self.pool.clear()
        self.metrics.clear()
        self._generation += 1

    def shutdown(self) -> None:
        """Stop everything and flush the last metrics."""
        self.reset()
        self.metrics.stop()

    def status(self) -> dict[str, Any]:
        """Listeners, load balancers and targets by state."""
        states: Counter[str] = Counter()
        for group in list(self.groups.values()):
            with group.lock:
                states.update(t.state for t in group.targets.values())
        listeners = list(self.listeners.values())
        return {
            "listeners": len(listeners),
            "load balancers": len({item.load_balancer_arn for item in listeners}),
            "targets": dict(states),
        }

    def endpoints(self) -> dict[str, Any]:
        """Local URLs per load balancer and listener (the port 80 listener is the LB's URL)."""
        listeners = list(self.listeners.values())
        balancers: dict[str, dict[str, Any]] = {}
        for listener in listeners:
            entry = balancers.setdefault(listener.load_balancer_arn, {"url": None, "listeners": {}})
            entry["listeners"][listener.arn] = {"port": listener.port, "url": listener.url}
        for arn, entry in balancers.items():
            own = [item for item in listeners if item.load_balancer_arn == arn]
            entry["url"] = next((item for item in own if item.port == 80), own[0]).url
        return {"load_balancers": balancers}
