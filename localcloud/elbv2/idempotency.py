"""ELBv2's idempotent creates: a repeated call with the same settings returns what exists.

CreateLoadBalancer, CreateTargetGroup and CreateListener complete at most once: called again
with the same settings they succeed and return the existing resource; the same name (for a
listener, the same port of the load balancer) with other settings is refused
(https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html,
API_CreateTargetGroup.html, API_CreateListener.html). moto instead creates a second load
balancer or listener and refuses every repeated target group.

The settings compared are the ones the request gives: a request that leaves one out matches
whatever the existing resource has for it (AWS does not document which settings it compares).
"""

from __future__ import annotations

import json
from typing import Any

from ..protocols import ServiceError

TARGET_GROUP_SETTINGS = (
    "Protocol",
    "ProtocolVersion",
    "Port",
    "VpcId",
    "TargetType",
    "IpAddressType",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckEnabled",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
)


def same_load_balancer(params: dict[str, Any], existing: dict[str, Any]) -> bool:
    """Whether CreateLoadBalancer's settings match the load balancer of that name."""
    requested = {m["SubnetId"] for m in params.get("SubnetMappings") or []}
    requested |= set(params.get("Subnets") or [])
    if requested and requested != {z["SubnetId"] for z in existing.get("AvailabilityZones", [])}:
        return False
    groups = params.get("SecurityGroups")
    if groups is not None and set(groups) != set(existing.get("SecurityGroups") or []):
        return False
    return _given_match(params, existing, ("Scheme", "Type", "IpAddressType"))


def same_target_group(params: dict[str, Any], existing: dict[str, Any]) -> bool:
    """Whether CreateTargetGroup's settings match the target group of that name."""
    return _given_match(params, existing, TARGET_GROUP_SETTINGS)


def same_listener(params: dict[str, Any], existing: dict[str, Any]) -> bool:
    """Whether CreateListener's settings match the listener on that port."""
    if not _given_match(params, existing, ("Protocol", "SslPolicy")):
        return False
    certificates = params.get("Certificates")
    if certificates is not None and _arns(certificates) != _arns(existing.get("Certificates")):
        return False
    actions = params.get("DefaultActions")
    if actions is None:
        return True
    present = existing.get("DefaultActions") or []
    return len(actions) == len(present) and all(map(_same_action, actions, present))


def duplicate_load_balancer(name: str) -> ServiceError:
    return ServiceError(
        "DuplicateLoadBalancerName",
        f"A load balancer with the same name '{name}' exists, but with different settings",
    )


def duplicate_target_group(name: str) -> ServiceError:
    return ServiceError(
        "DuplicateTargetGroupName",
        f"A target group with the same name '{name}' exists, but with different settings",
    )


def duplicate_listener(load_balancer_arn: str) -> ServiceError:
    return ServiceError(
        "DuplicateListener",
        f"A listener already exists on this port for this load balancer '{load_balancer_arn}'",
    )


def _given_match(params: dict[str, Any], existing: dict[str, Any], keys: tuple[str, ...]) -> bool:
    """Whether each of `keys` that the request gives has the existing resource's value."""
    return all(
        _text(params[key]) == _text(existing.get(key))
        for key in keys
        if params.get(key) is not None
    )


def _text(value: Any) -> str:
    """A setting in one comparable form (ports come as numbers or strings, Matcher as a dict)."""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)


def _arns(certificates: list[dict[str, Any]] | None) -> set[str]:
    return {c.get("CertificateArn", "") for c in certificates or []}


def _same_action(requested: dict[str, Any], present: dict[str, Any]) -> bool:
    """Same type, same target groups, and the requested response or redirect settings kept."""
    if requested.get("Type") != present.get("Type"):
        return False
    if _target_groups(requested) != _target_groups(present):
        return False
    for key in ("FixedResponseConfig", "RedirectConfig"):
        kept = present.get(key) or {}
        if any(kept.get(name) != value for name, value in (requested.get(key) or {}).items()):
            return False
    return True


def _target_groups(action: dict[str, Any]) -> set[str]:
    """A forward action's target groups, given directly or in its ForwardConfig."""
    config = action.get("ForwardConfig") or {}
    groups = {group["TargetGroupArn"] for group in config.get("TargetGroups", [])}
    if action.get("TargetGroupArn"):
        groups.add(action["TargetGroupArn"])
    return groups
