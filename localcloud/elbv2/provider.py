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
- No LCUs, connection limits, 413/463 answers, WebSocket or HTTP/2 (an HTTP/2 request
  gets 505); idle_timeout.timeout_seconds is applied as the upstream read timeout (504).
  Request headers over 16 K a line or 64 K in all, and malformed requests, get AWS's 400
  (501 for an unsupported Transfer-Encoding) from the listener, not counted in the metrics.
  Content-Length with Transfer-Encoding is always handled as the default `defensive` desync
  mitigation mode does (forwarded chunked, then both connections closed); the
  routing.http.desync_mitigation_mode attribute is not applied.
  X-Forwarded-For is always appended (the preserve/remove modes are not applied).
- The 405, 501, 504 and 505 pages and redirect bodies reuse AWS's error-page template, and
  fixed responses carry `; charset=utf-8` in their Content-Type [unconfirmed].
- Metrics reach the local CloudWatch within about a second, with the LoadBalancer and
  LoadBalancer+TargetGroup dimensions only (AWS: one-minute data, more dimension sets);
  RequestCount counts every request, including those the load balancer answers itself.
- Network load balancers and TCP/UDP/TLS listeners are stored by moto but not served.
- A repeated CreateLoadBalancer, CreateTargetGroup or CreateListener returns the existing
  resource when the settings the request gives match it (idempotency.py); settings it leaves
  out are not compared (AWS does not document which settings it compares).
- A new load balancer is `active` at once; under the AWS timing profile
  (`localcloud/timing.py`) it is `provisioning` for AWS's time, scaled, and its listeners
  close connections without an answer meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from ..context import CloudContext
from ..protocols import unless_missing
from ..registry import Provider, RequestContext
from ..timing import Lifecycle
from .dataplane import DataPlane
from .health import HealthChecker, HealthSettings, TargetGroupState
from .idempotency import (
    duplicate_listener,
    duplicate_load_balancer,
    duplicate_target_group,
    same_listener,
    same_load_balancer,
    same_target_group,
)
from .listener import Listener
from .metrics import publish_host_counts
from .proxy import ListenerProxy

log = logging.getLogger("localcloud.elbv2")

SERVED_PROTOCOLS = ("HTTP", "HTTPS")


class ElbV2Provider(Provider):
    """Local ALB data plane: listeners, routing, health checks and metrics."""

    service = "elbv2"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.plane = DataPlane(cloud.moto, cloud.addresses)
        self.health = HealthChecker(
            lambda: list(self.plane.groups.values()),
            self.plane.usage,
            self.plane.resolve,
            self._publish_hosts,
        )
        self._provisioning = Lifecycle(cloud.timing, "load balancer")  # AWS timing profile only
        self._creating = threading.Lock()  # a create's check for an existing one and the create

    # -- load balancers ------------------------------------------------------------------

    def CreateLoadBalancer(self, params: dict, context: RequestContext) -> dict:
        """moto creates it; under the AWS timing profile it is `provisioning` for a while.

        Called again with the same settings it returns the existing one (idempotency.py).
        """
        with self._creating:
            found = self._find("DescribeLoadBalancers", {"Names": [params["Name"]]}, context)
            if found is not None:
                if not same_load_balancer(params, found):
                    raise duplicate_load_balancer(params["Name"])
                return self._patch_states({"LoadBalancers": [found]})
            result = self._moto("CreateLoadBalancer", params, context)
        for balancer in result.get("LoadBalancers", []):
            if balancer.get("Type", "application") == "application":
                self._provisioning.created(balancer["LoadBalancerArn"])
        return self._patch_states(result)

    def CreateTargetGroup(self, params: dict, context: RequestContext) -> dict:
        """moto creates it; called again with the same settings it returns the existing one."""
        with self._creating:
            found = self._find("DescribeTargetGroups", {"Names": [params["Name"]]}, context)
            if found is not None:
                if not same_target_group(params, found):
                    raise duplicate_target_group(params["Name"])
                return {"TargetGroups": [found]}
            return self._moto("CreateTargetGroup", params, context)

    def _find(self, operation: str, params: dict, context: RequestContext) -> dict | None:
        """The one resource a Describe call by name finds, or None when there is none."""
        missing = ("LoadBalancerNotFound", "TargetGroupNotFound")
        result = unless_missing(lambda: self._moto(operation, params, context), *missing) or {}
        found = result.get("LoadBalancers") or result.get("TargetGroups") or []
        return found[0] if found else None

    def DescribeLoadBalancers(self, params: dict, context: RequestContext) -> dict:
        """moto's load balancers; `provisioning` until their time has passed, then `active`."""
        return self._patch_states(self._moto("DescribeLoadBalancers", params, context))

    def _patch_states(self, result: dict) -> dict:
        for balancer in result.get("LoadBalancers", []):
            if self._provisioning.creating(balancer["LoadBalancerArn"]):
                balancer["State"] = {"Code": "provisioning"}
        return result

    # -- listeners -----------------------------------------------------------------------

    def CreateListener(self, params: dict, context: RequestContext) -> dict:
        """moto creates the listener; an HTTP(S) listener then serves on a local port.

        Called again for the same port with the same settings it returns the existing one.
        """
        with self._creating:
            found = self._listener_on(params["LoadBalancerArn"], params.get("Port"), context)
            if found is not None:
                if not same_listener(params, found):
                    raise duplicate_listener(params["LoadBalancerArn"])
                return {"Listeners": [found]}
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
                proxy = ListenerProxy(listener, self.plane, self.cloud.publisher)
                balancer = listener.load_balancer_arn
                proxy.ready = lambda arn=balancer: not self._provisioning.creating(arn)
                listener.start(proxy)
                with self.plane.lock:
                    self.plane.listeners[listener.arn] = listener
        self._rules_changed()
        self.health.start()
        return result

    def _listener_on(self, balancer: str, port: int | None, context: RequestContext) -> dict | None:
        """The load balancer's listener on `port`, if it has one."""
        if port is None:
            return None
        found = self._moto("DescribeListeners", {"LoadBalancerArn": balancer}, context)
        return next((item for item in found["Listeners"] if int(item["Port"]) == port), None)

    def DeleteListener(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the listener; its local server stops and its connections close."""
        result = self._moto("DeleteListener", params, context)
        self.plane.stop_listeners([params.get("ListenerArn", "")])
        self.health.wake()
        return result

    def DeleteLoadBalancer(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the load balancer; the servers of its listeners stop."""
        arn = params.get("LoadBalancerArn", "")
        result = self._moto("DeleteLoadBalancer", params, context)
        with self.plane.lock:
            owned = [a for a, item in self.plane.listeners.items() if item.load_balancer_arn == arn]
        self.plane.forget_idle_timeout(arn)
        self.plane.stop_listeners(owned)
        self.health.wake()
        return result

    def ModifyListener(self, params: dict, context: RequestContext) -> dict:
        """moto changes the listener; the local server follows its port, protocol and actions."""
        result = self._moto("ModifyListener", params, context)
        for item in result.get("Listeners", []):
            listener = self.plane.listeners.get(item.get("ListenerArn", ""))
            if listener is not None:
                listener.port = int(item.get("Port") or listener.port)
                listener.protocol = item.get("Protocol") or listener.protocol
        self._rules_changed()
        return result

    # -- rules ---------------------------------------------------------------------------

    def CreateRule(self, params: dict, context: RequestContext) -> dict:
        """moto stores the rule; listeners use it from the next request on."""
        return self._rules_call("CreateRule", params, context)

    def ModifyRule(self, params: dict, context: RequestContext) -> dict:
        """moto changes the rule; listeners use it from the next request on."""
        return self._rules_call("ModifyRule", params, context)

    def DeleteRule(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the rule; listeners stop using it from the next request on."""
        return self._rules_call("DeleteRule", params, context)

    def SetRulePriorities(self, params: dict, context: RequestContext) -> dict:
        """moto reorders the rules; listeners use the new order from the next request on."""
        return self._rules_call("SetRulePriorities", params, context)

    def _rules_call(self, operation: str, params: dict, context: RequestContext) -> dict:
        """A rule change: moto first, then every cached rule list is stale."""
        result = self._moto(operation, params, context)
        self._rules_changed()
        return result

    def _rules_changed(self) -> None:
        """Invalidate the rule caches and let health checking follow the new usage."""
        self.plane.rules_changed()
        self.health.wake()

    # -- targets -------------------------------------------------------------------------

    def RegisterTargets(self, params: dict, context: RequestContext) -> dict:
        """moto records the targets; health checks start (state `initial`) right away."""
        result = self._moto("RegisterTargets", params, context)
        group = self._group(params["TargetGroupArn"], context.region)
        now = time.monotonic()
        group.set_usage(self.plane.usage().get(group.arn, frozenset()), now)  # a new listener?
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

    def DeregisterTargets(self, params: dict, context: RequestContext) -> dict:
        """moto forgets the targets; locally they drain for the deregistration delay."""
        result = self._moto("DeregisterTargets", params, context)
        group = self.plane.group(params["TargetGroupArn"])
        if group is not None:
            keys = [
                (t["Id"], int(t.get("Port") or group.traffic_port))
                for t in params.get("Targets", [])
            ]
            group.deregister(keys, time.monotonic())
        return result

    def DescribeTargetHealth(self, params: dict, context: RequestContext) -> dict:
        """The targets' real health-check states, reasons and descriptions."""
        arn = params["TargetGroupArn"]
        self._moto("DescribeTargetHealth", {"TargetGroupArn": arn}, context)  # validates the ARN
        group = self.plane.group(arn) or self._group(arn, context.region)
        wanted = params.get("Targets")
        keys = None
        if wanted:
            keys = [(t["Id"], int(t.get("Port") or group.traffic_port)) for t in wanted]
        return {"TargetHealthDescriptions": group.describe(keys)}

    def ModifyTargetGroup(self, params: dict, context: RequestContext) -> dict:
        """moto changes the health-check settings; the checker uses them from now on."""
        result = self._moto("ModifyTargetGroup", params, context)
        self._refresh_group(params["TargetGroupArn"], context.region)
        return result

    def ModifyTargetGroupAttributes(self, params: dict, context: RequestContext) -> dict:
        """moto stores the attributes; a new deregistration delay applies to later drains."""
        result = self._moto("ModifyTargetGroupAttributes", params, context)
        self._refresh_group(params["TargetGroupArn"], context.region)
        return result

    def DeleteTargetGroup(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the target group (refused while in use); its local targets go too."""
        result = self._moto("DeleteTargetGroup", params, context)
        with self.plane.lock:
            self.plane.groups.pop(params.get("TargetGroupArn", ""), None)
        return result

    def ModifyLoadBalancerAttributes(self, params: dict, context: RequestContext) -> dict:
        """moto stores the attributes; a new idle timeout applies to the next request."""
        result = self._moto("ModifyLoadBalancerAttributes", params, context)
        self.plane.forget_idle_timeout(params.get("LoadBalancerArn", ""))
        return result

    def group(self, arn: str) -> TargetGroupState | None:
        """The live state of a target group with registered targets, or None."""
        return self.plane.group(arn)

    def _group(self, arn: str, region: str) -> TargetGroupState:
        """The local state of a target group, created from moto's description if new."""
        with self.plane.lock:
            found = self.plane.groups.get(arn)
            if found is not None:
                return found
        settings, described = self._describe_group(arn, region)
        group = TargetGroupState(arn, region, settings)
        group.target_type = described.get("TargetType") or "ip"
        group.traffic_port = int(described.get("Port") or 80)
        group.load_balancers = self.plane.usage().get(arn, frozenset())
        with self.plane.lock:
            return self.plane.groups.setdefault(arn, group)

    def _refresh_group(self, arn: str, region: str) -> None:
        """Re-read a known target group's settings from moto."""
        group = self.plane.group(arn)
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

    def _publish_hosts(self, group: TargetGroupState) -> None:
        """HealthyHostCount and UnHealthyHostCount per load balancer using the group."""
        healthy, unhealthy = group.counts()
        try:
            publish_host_counts(
                self.cloud.metrics, group.arn, group.load_balancers, healthy, unhealthy
            )
        except Exception:  # metrics must never stop health checking
            log.exception("could not publish host counts")

    # -- lifecycle and reporting ---------------------------------------------------------

    def _moto(self, operation: str, params: dict, context: RequestContext) -> dict:
        """Let moto serve the operation (its errors are AWS's errors)."""
        return self.cloud.moto.call("elbv2", operation, params, context.region)

    def reset(self) -> None:
        """Stop every listener and health check; forget targets and caches."""
        self.health.stop()
        self.plane.reset()
        self._provisioning.clear()

    def shutdown(self) -> None:
        """Stop everything (the publisher flushes the last request metrics)."""
        self.reset()

    def status(self) -> dict[str, Any]:
        """Listeners, load balancers and targets by state."""
        states: Counter[str] = Counter()
        for group in list(self.plane.groups.values()):
            with group.lock:
                states.update(t.state for t in group.targets.values())
        listeners = list(self.plane.listeners.values())
        return {
            "listeners": len(listeners),
            "load balancers": len({item.load_balancer_arn for item in listeners}),
            "targets": dict(states),
        }

    def endpoints(self) -> dict[str, Any]:
        """Local URLs per load balancer and listener (the port 80 listener is the LB's URL)."""
        listeners = list(self.plane.listeners.values())
        balancers: dict[str, dict[str, Any]] = {}
        for listener in listeners:
            entry = balancers.setdefault(listener.load_balancer_arn, {"url": None, "listeners": {}})
            entry["listeners"][listener.arn] = {"port": listener.port, "url": listener.url}
        for arn, entry in balancers.items():
            own = [item for item in listeners if item.load_balancer_arn == arn]
            entry["url"] = next((item for item in own if item.port == 80), own[0]).url
        return {"load_balancers": balancers}
