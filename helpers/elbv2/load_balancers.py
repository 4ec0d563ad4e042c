"""Application Load Balancers for the course: security groups, load balancer, targets, listener.

A public ALB takes HTTP on port 80 from the internet (its own security group) and forwards
to a target group of `ip` targets, the Fargate tasks, which it health-checks. The tasks'
security group admits only the ALB's group on the container port (`allow_from_security_group`).
Every `ensure_*` is get-or-create and converges settings that AWS lets us change in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from .. import naming
from ..cleanup import is_not_found
from ..costs import Price
from ..ec2 import ensure_security_group
from ..lab import Lab, UrlResolver, local_endpoints
from ..waiting import wait_for

LOAD_BALANCER_KIND = "load balancer"
TARGET_GROUP_KIND = "target group"
SECURITY_GROUP_KIND = "alb security group"
LISTENER_KIND = "alb listener"  # ledger only: listeners are deleted with their load balancer
ALB_SG_NAME = "alb-sg"
ELB_NAME_MAX = 32  # load balancer and target group names
ANYWHERE = "0.0.0.0/0"

# AWS's limits for ALB target group health checks and attributes.
INTERVAL_S = (5, 300)
TIMEOUT_S = (2, 120)
THRESHOLD = (2, 10)
DEREGISTRATION_DELAY_S = (0, 3600)
IDLE_TIMEOUT_S = (1, 4000)
_ELB_NAME = re.compile(r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")
_MATCHER = re.compile(r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")


def elb_name(lab: Lab, pattern: str, name: str, what: str = "load balancer") -> str:
    """The course name for a load balancer or target group; refuses names AWS would reject."""
    if not _ELB_NAME.match(name):
        raise ValueError(
            f"{what} name {name!r}: use letters, digits and single hyphens, "
            "not starting or ending with a hyphen (e.g. 'web')"
        )
    full = lab.name(pattern, name, 255)
    if len(full) > ELB_NAME_MAX:
        # lab.name would shorten it with a hash: legal, but unreadable in the console and
        # easy to confuse with a sibling. A clear error is kinder.
        prefix = full[: len(full) - len(name)]
        raise ValueError(
            f"{what} name {name!r} is too long: AWS allows {ELB_NAME_MAX} characters and the "
            f"course prefix {prefix!r} leaves {ELB_NAME_MAX - len(prefix)}; use a shorter name"
        )
    return full


def ensure_alb_security_group(lab: Lab, pattern: str, vpc_id: str, *, port: int = 80) -> str:
    """Get or create the load balancer's security group: TCP `port` open to the internet."""
    _check_range("port", port, (1, 65535))
    group = ensure_security_group(
        lab,
        pattern,
        ALB_SG_NAME,
        vpc_id,
        description=f"Course pattern {pattern}: public load balancer, open to the internet",
        ledger_kind=SECURITY_GROUP_KIND,
    )
    group_id, rules = group["GroupId"], group.get("IpPermissions", [])
    ec2 = lab.client("ec2")
    wanted = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    public = [r for r in rules if any(x.get("CidrIp") == ANYWHERE for x in r.get("IpRanges", []))]
    # A re-run with another port closes the old one: the group opens exactly one port.
    stale = [
        {key: r[key] for key in ("IpProtocol", "FromPort", "ToPort") if key in r}
        for r in public
        if {key: r.get(key) for key in wanted} != wanted
    ]
    if stale:
        ec2.revoke_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[{**r, "IpRanges": [{"CidrIp": ANYWHERE}]} for r in stale],
        )
    if len(stale) == len(public):  # the wanted rule is not there yet
        _authorize(ec2, group_id, {**wanted, "IpRanges": [{"CidrIp": ANYWHERE}]})
    return group_id


def allow_from_security_group(lab: Lab, group_id: str, source_group_id: str, port: int) -> None:
    """Let members of `source_group_id` reach `group_id` on one TCP port (idempotent)."""
    _check_range("port", port, (1, 65535))
    permission = {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "UserIdGroupPairs": [{"GroupId": source_group_id}],
    }
    _authorize(lab.client("ec2"), group_id, permission)


def ensure_load_balancer(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    idle_timeout_s: int | None = None,
) -> dict[str, Any]:
    """Get or create an internet-facing Application Load Balancer; wait until it is active."""
    lb_name = elb_name(lab, pattern, name, "load balancer")
    if isinstance(subnets, str) or len(set(subnets)) < 2:
        raise ValueError(
            "subnets: an Application Load Balancer needs a list of at least two subnets in "
            f"different availability zones (e.g. default_subnets(lab)[1]), not {subnets!r}"
        )
    if isinstance(security_groups, str) or not security_groups:
        raise ValueError(f"security_groups: give a list of group ids, not {security_groups!r}")
    if idle_timeout_s is not None:
        _check_range("idle_timeout_s", idle_timeout_s, IDLE_TIMEOUT_S, "seconds")
    client = lab.client("elbv2")
    balancer = _describe_load_balancer(client, lb_name)
    if balancer is None:
        balancer = client.create_load_balancer(
            Name=lb_name,
            Subnets=sorted(set(subnets)),
            SecurityGroups=list(security_groups),
            Scheme="internet-facing",
            Type="application",
            IpAddressType="ipv4",
            Tags=naming.tag_list(lab.tags(pattern)),
        )["LoadBalancers"][0]
        lab.ledger.record(LOAD_BALANCER_KIND, lb_name, pattern)
    else:
        if balancer.get("Scheme") != "internet-facing" or balancer.get("Type") != "application":
            raise ValueError(
                f"load balancer {lb_name} exists as {balancer.get('Scheme')} "
                f"{balancer.get('Type')}: tear it down or use another name"
            )
        _converge_network(client, balancer, subnets, security_groups)
    arn = balancer["LoadBalancerArn"]
    if idle_timeout_s is not None:
        _converge_attributes(
            client.describe_load_balancer_attributes,
            client.modify_load_balancer_attributes,
            {"LoadBalancerArn": arn},
            {"idle_timeout.timeout_seconds": str(idle_timeout_s)},
        )
    return _wait_active(lab, client, lb_name)


def ensure_target_group(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    vpc_id: str,
    port: int,
    health_check_path: str = "/health",
    interval_s: int = 10,
    healthy_threshold: int = 2,
    unhealthy_threshold: int = 2,
    timeout_s: int = 5,
    deregistration_delay_s: int = 30,
    matcher: str = "200",
) -> dict[str, Any]:
    """Get or create an HTTP target group of `ip` targets (Fargate tasks); converge its checks."""
    tg_name = elb_name(lab, pattern, name, "target group")
    _check_range("port", port, (1, 65535))
    _check_range("interval_s", interval_s, INTERVAL_S, "seconds")
    _check_range("timeout_s", timeout_s, TIMEOUT_S, "seconds")
    if timeout_s >= interval_s:
        raise ValueError(
            f"timeout_s ({timeout_s}) must be less than interval_s ({interval_s}): a health "
            "check has to finish before the next one starts"
        )
    _check_range("healthy_threshold", healthy_threshold, THRESHOLD, "checks")
    _check_range("unhealthy_threshold", unhealthy_threshold, THRESHOLD, "checks")
    _check_range("deregistration_delay_s", deregistration_delay_s, DEREGISTRATION_DELAY_S, "s")
    if not isinstance(health_check_path, str) or not health_check_path.startswith("/"):
        raise ValueError(f"health_check_path must start with '/', not {health_check_path!r}")
    if not _MATCHER.match(matcher):
        raise ValueError(
            f"matcher {matcher!r}: use HTTP codes such as '200', '200,204' or '200-299'"
        )
    health: dict[str, Any] = {
        "HealthCheckEnabled": True,
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPath": health_check_path,
        "HealthCheckIntervalSeconds": interval_s,
        "HealthCheckTimeoutSeconds": timeout_s,
        "HealthyThresholdCount": healthy_threshold,
        "UnhealthyThresholdCount": unhealthy_threshold,
        "Matcher": {"HttpCode": matcher},
    }
    fixed = {"Protocol": "HTTP", "Port": port, "VpcId": vpc_id, "TargetType": "ip"}
    client = lab.client("elbv2")
    group = _describe_target_group(client, tg_name)
    if group is None:
        group = client.create_target_group(
            Name=tg_name, **fixed, **health, Tags=naming.tag_list(lab.tags(pattern))
        )["TargetGroups"][0]
        lab.ledger.record(TARGET_GROUP_KIND, tg_name, pattern)
    else:
        different = {k: group.get(k) for k, v in fixed.items() if group.get(k) != v}
        if different:
            raise ValueError(
                f"target group {tg_name} exists with {different}; AWS cannot change a target "
                "group's protocol, port, VPC or target type: tear it down "
                f"(cleanup.teardown(lab, pattern={pattern!r})) or use another name"
            )
        changes = {k: v for k, v in health.items() if group.get(k) != v}
        if changes:
            group = client.modify_target_group(TargetGroupArn=group["TargetGroupArn"], **changes)[
                "TargetGroups"
            ][0]
            lab.ledger.record(TARGET_GROUP_KIND, tg_name, pattern, "updated health check")
    # How long a stopping task keeps getting in-flight requests; AWS's default is 300 s.
    _converge_attributes(
        client.describe_target_group_attributes,
        client.modify_target_group_attributes,
        {"TargetGroupArn": group["TargetGroupArn"]},
        {"deregistration_delay.timeout_seconds": str(deregistration_delay_s)},
    )
    return group


def ensure_listener(
    lab: Lab, load_balancer_arn: str, target_group_arn: str, *, port: int = 80
) -> dict[str, Any]:
    """Get or create the load balancer's HTTP listener on `port`, forwarding to one target group."""
    _check_range("port", port, (1, 65535))
    lb_name = load_balancer_name(load_balancer_arn)
    parts = naming.parse_name(lb_name)
    if parts is None:
        raise ValueError(f"{lb_name} is not a course load balancer (use ensure_load_balancer)")
    client = lab.client("elbv2")
    action = [{"Type": "forward", "TargetGroupArn": target_group_arn}]
    pages = client.get_paginator("describe_listeners").paginate(LoadBalancerArn=load_balancer_arn)
    for listener in (item for page in pages for item in page["Listeners"]):
        if listener["Port"] != port:
            continue
        if forward_targets(listener.get("DefaultActions", [])) == [target_group_arn]:
            return listener
        return client.modify_listener(
            ListenerArn=listener["ListenerArn"], Protocol="HTTP", DefaultActions=action
        )["Listeners"][0]
    listener = client.create_listener(
        LoadBalancerArn=load_balancer_arn,
        Protocol="HTTP",
        Port=port,
        DefaultActions=action,
        Tags=naming.tag_list(lab.tags(parts.pattern)),
    )["Listeners"][0]
    lab.ledger.record(LISTENER_KIND, f"{lb_name}:{port}", parts.pattern)
    return listener


def load_balancer_name(load_balancer_arn: str) -> str:
    """The name inside an ALB ARN (`...:loadbalancer/app/<name>/<id>`)."""
    suffix = load_balancer_arn.partition(":loadbalancer/")[2].split("/")
    if len(suffix) != 3 or suffix[0] != "app":
        raise ValueError(
            f"{load_balancer_arn!r} is not an Application Load Balancer ARN: pass "
            "load_balancer['LoadBalancerArn'] from ensure_load_balancer"
        )
    return suffix[1]


def forward_targets(actions: Sequence[dict[str, Any]]) -> list[str]:
    """The target group ARNs a listener's default actions forward to ([] if not one forward)."""
    if len(actions) != 1 or actions[0].get("Type") != "forward":
        return []
    action = actions[0]
    weighted = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    arns = {group["TargetGroupArn"] for group in weighted}
    if action.get("TargetGroupArn"):
        arns.add(action["TargetGroupArn"])
    return sorted(arns)


def _check_range(field: str, value: int, bounds: tuple[int, int], unit: str = "") -> None:
    """Raise ValueError naming the field and its allowed range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be a whole number, not {value!r}")
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(
            f"{field} must be between {bounds[0]} and {bounds[1]} {unit}".rstrip()
            + f", not {value}"
        )


def _authorize(ec2: Any, group_id: str, permission: dict[str, Any]) -> None:
    """Add one ingress rule; an identical rule already there is fine."""
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
            raise


def _describe_load_balancer(client: Any, name: str) -> dict[str, Any] | None:
    """The load balancer of that name, or None."""
    try:
        return client.describe_load_balancers(Names=[name])["LoadBalancers"][0]
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def _describe_target_group(client: Any, name: str) -> dict[str, Any] | None:
    """The target group of that name, or None."""
    try:
        return client.describe_target_groups(Names=[name])["TargetGroups"][0]
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def _converge_network(
    client: Any, balancer: dict[str, Any], subnets: Sequence[str], groups: Sequence[str]
) -> None:
    """Move an existing load balancer to the requested subnets and security groups."""
    arn = balancer["LoadBalancerArn"]
    current = sorted(zone["SubnetId"] for zone in balancer.get("AvailabilityZones", []))
    if current != sorted(set(subnets)):
        client.set_subnets(LoadBalancerArn=arn, Subnets=sorted(set(subnets)))
    if sorted(balancer.get("SecurityGroups", [])) != sorted(set(groups)):
        client.set_security_groups(LoadBalancerArn=arn, SecurityGroups=list(groups))


def _converge_attributes(
    describe: Callable[..., Any],
    modify: Callable[..., Any],
    target: dict[str, str],
    wanted: dict[str, str],
) -> None:
    """Modify only the attributes whose value differs (attribute values are strings)."""
    current = {a["Key"]: a["Value"] for a in describe(**target)["Attributes"]}
    changes = [{"Key": k, "Value": v} for k, v in wanted.items() if current.get(k) != v]
    if changes:
        modify(**target, Attributes=changes)


def _wait_active(lab: Lab, client: Any, lb_name: str) -> dict[str, Any]:
    """Poll until the load balancer is active (AWS: a few minutes; local: at once)."""

    def check() -> dict[str, Any] | None:
        balancer = client.describe_load_balancers(Names=[lb_name])["LoadBalancers"][0]
        state = balancer.get("State", {})
        if state.get("Code") == "failed":
            raise RuntimeError(f"load balancer {lb_name} failed: {state.get('Reason')}")
        # active_impaired routes traffic too; it only lacks the capacity to scale yet.
        return balancer if state.get("Code") in ("active", "active_impaired") else None

    return wait_for(
        check,
        what=f"load balancer {lb_name} provisioning",
        timeout=900,
        pace=lab.pace.load_balancer_active,
        hint="Re-run this cell to keep waiting; AWS keeps provisioning meanwhile.",
    )


def _aws_url(lab: Lab, balancer: dict[str, Any], stage: str | None) -> str:
    """On AWS: the load balancer's public DNS name."""
    return f"http://{balancer['DNSName']}"


def _local_url(lab: Lab, balancer: dict[str, Any], stage: str | None) -> str:
    """Locally: the loopback address of the load balancer's listener."""
    found = local_endpoints(lab).get("elbv2", {}).get("load_balancers", {})
    entry = found.get(balancer["LoadBalancerArn"])
    if not entry or not entry.get("url"):
        raise LookupError(
            f"load balancer {balancer.get('LoadBalancerName')} has no listener on the local "
            "cloud yet: create one (create_listener) before asking for its URL"
        )
    return entry["url"]


URL_RESOLVERS = [
    UrlResolver(
        "alb",
        recognises=lambda resource: "LoadBalancerArn" in resource,
        builders={"aws": _aws_url, "local": _local_url},
    )
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "alb_hour": Price(0.0225, "ALB-hour", "plus LCU-hours"),
    "alb_lcu_hour": Price(0.008, "LCU-hour"),
}
