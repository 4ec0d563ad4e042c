"""What the listeners and the health checker read: listeners, target groups, rules, addresses.

The provider changes this state as API calls arrive; request threads and the health checker
read it. A listener's rules come from moto (DescribeRules) and are cached per listener: a
rule change made through the provider invalidates every cache at once, and a TTL is the
backstop. The health checker refreshes caches early, so requests rarely wait for moto.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import defaultdict
from typing import Any

from ..context import Address, Addresses
from ..http.upstream import UpstreamPool
from ..motogateway import MotoGateway
from .health import TargetGroupState
from .listener import Listener
from .rules import forwarded_groups, sort_rules

log = logging.getLogger("localcloud.elbv2")

RULES_TTL_SECONDS = 10.0
DEFAULT_IDLE_TIMEOUT = 60.0


class DataPlane:
    """The served listeners and target groups, and the look-ups that requests need."""

    def __init__(self, moto: MotoGateway, addresses: Addresses) -> None:
        self._moto, self._addresses = moto, addresses
        self.listeners: dict[str, Listener] = {}
        self.groups: dict[str, TargetGroupState] = {}
        self.pool = UpstreamPool()  # keep-alive connections to targets, for every listener
        self.lock = threading.RLock()
        self._idle: dict[str, float] = {}
        self._generation = 0

    # -- rules ---------------------------------------------------------------------------

    def rules_changed(self) -> None:
        """Every cached rule list is stale from now on."""
        self._generation += 1

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
                page = self._moto.call("elbv2", "DescribeRules", params, listener.region)
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

    # -- look-ups ------------------------------------------------------------------------

    def group(self, arn: str) -> TargetGroupState | None:
        """A target group with registered targets, or None (no targets: a 503)."""
        return self.groups.get(arn)

    def resolve(self, ip: str, port: int) -> Address | None:
        """Where to connect for a target: the ECS task mapping, a loopback IP, or nowhere."""
        found = self._addresses.resolve(ip, port)
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
                attributes = self._moto.call(
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

    def forget_idle_timeout(self, load_balancer_arn: str) -> None:
        """The load balancer's attributes changed (or it is gone): read them again."""
        self._idle.pop(load_balancer_arn, None)

    def local_port(self, load_balancer_arn: str, port: int) -> int | None:
        """The local port of the load balancer's listener on an AWS port, if any."""
        for listener in list(self.listeners.values()):
            if listener.load_balancer_arn == load_balancer_arn and listener.port == port:
                return listener.local_port
        return None

    # -- lifecycle -----------------------------------------------------------------------

    def stop_listeners(self, arns: list[str]) -> None:
        """Stop and forget local listener servers."""
        with self.lock:
            stopping = [self.listeners.pop(arn) for arn in arns if arn in self.listeners]
        for listener in stopping:
            listener.stop()
        self.rules_changed()

    def reset(self) -> None:
        """Stop every listener, forget targets and caches, close idle target connections."""
        with self.lock:
            stopping, self.listeners = list(self.listeners.values()), {}
            self.groups = {}
            self._idle = {}
        for listener in stopping:
            listener.stop()
        self.pool.clear()
        self.rules_changed()
