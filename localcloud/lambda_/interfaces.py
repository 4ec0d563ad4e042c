"""A VPC function's network interfaces, under the AWS timing profile (none with it off).

Lambda creates network interfaces in the function's subnets when a function is attached to
a VPC; the function is `Pending` until they exist, and Invoke answers ResourceConflictException
meanwhile (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html). After the
function is deleted or detached, Lambda releases them only later, and until then they hold
the function's security groups: DeleteSecurityGroup answers DependencyViolation
(`localcloud/motogateway/ec2_rules.py`). Here each attach creates one interface per subnet in
moto's EC2, described as Lambda's, and each release deletes them when the profile's
lifecycle time has passed (`localcloud/timing.py`, "lambda network interfaces"). AWS shares
one interface among the functions with the same subnet and security groups; here each
function has its own.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..motogateway import MotoGateway
from ..motogateway.ec2_rules import LAMBDA_ENI_PREFIX
from ..protocols import ServiceError
from ..registry import RequestContext
from ..timing import Lifecycle, TimingProfile

log = logging.getLogger("localcloud.lambda")

Key = tuple[str, str, str]  # (account, region, function name)
PENDING_REASON = "The function is being created."


def function_name(name_or_arn: str) -> str:
    """The function's name from a name, a name:qualifier, or an ARN."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn.split(":")[0]


def vpc_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a VpcConfig update changes the function's subnets or security groups."""
    fields = ("SubnetIds", "SecurityGroupIds")
    return any(set(before.get(f) or []) != set(after.get(f) or []) for f in fields)


class VpcInterfaces:
    """The interfaces of each VPC function, created and released on AWS's schedule."""

    def __init__(self, moto: MotoGateway, timing: TimingProfile) -> None:
        self.moto = moto
        self.lifecycle = Lifecycle(timing, "lambda network interfaces")
        self._lock = threading.Lock()
        self._owned: dict[Key, list[str]] = {}  # interface ids by function
        self._releasing: list[tuple[float, str, list[str]]] = []  # (when, region, ids)
        self._updating: set[Key] = set()  # functions whose VpcConfig change is in progress
        self._closed = threading.Event()
        self._reaper: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.lifecycle.create_s > 0

    def attach(self, context: RequestContext, name: str, config: dict[str, Any] | None) -> None:
        """Interfaces for a function created or re-attached with `config` (the old ones go)."""
        if not self.enabled:
            return
        key = (context.account_id, context.region, function_name(name))
        subnets = list((config or {}).get("SubnetIds") or [])
        groups = list((config or {}).get("SecurityGroupIds") or [])
        self.release(context, name)
        if not subnets or not groups:
            return
        created = []
        for subnet in subnets:
            params = {
                "SubnetId": subnet,
                "Groups": groups,
                "Description": f"{LAMBDA_ENI_PREFIX}{key[2]}",
            }
            found = self.moto.call("ec2", "CreateNetworkInterface", params, context.region)
            created.append(found["NetworkInterface"]["NetworkInterfaceId"])
        with self._lock:
            self._owned[key] = created
        self.lifecycle.created(key)

    def updating(self, context: RequestContext, name: str) -> None:
        """The function's VpcConfig changed: LastUpdateStatus InProgress until it is done."""
        if self.enabled:
            with self._lock:
                self._updating.add((context.account_id, context.region, function_name(name)))

    def release(self, context: RequestContext, name: str) -> None:
        """The function is deleted or detached: its interfaces go later."""
        key = (context.account_id, context.region, function_name(name))
        with self._lock:
            owned = self._owned.pop(key, [])
            if owned:
                when = time.monotonic() + self.lifecycle.delete_s
                self._releasing.append((when, context.region, owned))
                self._ensure_reaper()
        self.lifecycle.forget(key)

    def patch(self, context: RequestContext, configuration: dict[str, Any]) -> dict[str, Any]:
        """`Pending` (or an update InProgress) while the function's interfaces are made."""
        name = configuration.get("FunctionName") or ""
        key = (context.account_id, context.region, name)
        if not self.lifecycle.creating(key):
            with self._lock:
                self._updating.discard(key)
            return configuration
        with self._lock:
            updating = key in self._updating
        if updating:
            configuration.update(
                LastUpdateStatus="InProgress",
                LastUpdateStatusReason="The function is being updated.",
                LastUpdateStatusReasonCode="Creating",
            )
        else:
            configuration.update(State="Pending", StateReason=PENDING_REASON)
            configuration["StateReasonCode"] = "Creating"
        return configuration

    def check_invoke(self, context: RequestContext, name: str) -> None:
        """Refuse an invoke while the function is Pending, as Lambda does."""
        key = (context.account_id, context.region, function_name(name))
        with self._lock:
            updating = key in self._updating
        if self.lifecycle.creating(key) and not updating:
            raise ServiceError(
                "ResourceConflictException",
                "The operation cannot be performed at this time. The function is currently "
                "in the following state: Pending",
                409,
            )

    def clear(self) -> None:
        """Forget every interface (moto's records are wiped with the rest)."""
        with self._lock:
            self._owned.clear()
            self._releasing.clear()
            self._updating.clear()
        self.lifecycle.clear()

    def close(self) -> None:
        self._closed.set()

    def _ensure_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="lambda-enis", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Delete the interfaces whose release time has come."""
        while not self._closed.wait(0.5):
            now = time.monotonic()
            with self._lock:
                due = [r for r in self._releasing if r[0] <= now]
                self._releasing = [r for r in self._releasing if r[0] > now]
            for _, region, ids in due:
                for interface in ids:
                    try:
                        params = {"NetworkInterfaceId": interface}
                        self.moto.call("ec2", "DeleteNetworkInterface", params, region)
                    except ServiceError as error:
                        log.info("interface %s: %s", interface, error.message)
