"""Teardown of the course's load balancers, target groups and ALB security groups.

Deleting a load balancer deletes its listeners. On AWS its network interfaces linger for a
few minutes afterwards and keep its security group in use, so the load balancer delete waits
for them, and the group delete first removes rules in other course groups that refer to it
(an ingress rule naming a group also blocks deleting that group).
"""

from __future__ import annotations

from collections.abc import Iterable

from botocore.exceptions import ClientError

from .. import cleanup, naming
from ..lab import Lab
from ..waiting import wait_for
from .load_balancers import ALB_SG_NAME, LOAD_BALANCER_KIND, SECURITY_GROUP_KIND, TARGET_GROUP_KIND


def _find_load_balancers(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course load balancers (all runs), by name."""
    return cleanup.named(
        LOAD_BALANCER_KIND,
        lab,
        "elbv2.describe_load_balancers",
        "LoadBalancers",
        "LoadBalancerName",
        "LoadBalancerArn",
    )


def _delete_load_balancer(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a load balancer, wait until it is gone and its network interfaces are released."""
    client, ec2 = lab.client("elbv2"), lab.client("ec2")
    arn, name = resource.detail["arn"], resource.identifier
    client.delete_load_balancer(LoadBalancerArn=arn)

    def gone() -> bool:
        try:
            client.describe_load_balancers(LoadBalancerArns=[arn])
        except ClientError as error:
            if cleanup.is_not_found(error):
                return True
            raise
        return False

    wait_for(gone, what=f"deleting {name}", timeout=300, pace=lab.pace.load_balancer_deleted)
    # AWS describes a load balancer's interfaces as "ELB app/<name>/<id>".
    description = f"ELB {arn.partition(':loadbalancer/')[2]}"

    def released() -> bool:
        interfaces = ec2.describe_network_interfaces(
            Filters=[{"Name": "description", "Values": [description]}]
        )["NetworkInterfaces"]
        return not interfaces

    wait_for(
        released,
        what=f"{name}: releasing network interfaces",
        timeout=900,
        pace=lab.pace.interfaces_released,
    )


def _find_target_groups(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course target groups (all runs), by name."""
    return cleanup.named(
        TARGET_GROUP_KIND,
        lab,
        "elbv2.describe_target_groups",
        "TargetGroups",
        "TargetGroupName",
        "TargetGroupArn",
    )


def _delete_target_group(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a target group; just after its load balancer goes, AWS may still say in use."""
    arn = resource.detail["arn"]
    cleanup.retry_while(
        lab,
        lambda: lab.client("elbv2").delete_target_group(TargetGroupArn=arn),
        ("ResourceInUse",),
        f"deleting {resource.identifier} (still used by a listener)",
        120,
    )


def _find_security_groups(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course ALB security groups (all runs), by name."""
    return cleanup.security_groups_named(lab, SECURITY_GROUP_KIND, ALB_SG_NAME)


def revoke_references(lab: Lab, group_id: str) -> int:
    """Remove ingress rules in other course groups that admit `group_id`; return how many."""
    ec2 = lab.client("ec2")
    paginator = ec2.get_paginator("describe_security_groups")
    pages = paginator.paginate(Filters=[{"Name": "ip-permission.group-id", "Values": [group_id]}])
    revoked = 0
    for group in (g for page in pages for g in page["SecurityGroups"]):
        # Only the course's own groups: a student's other groups are not ours to edit.
        if group["GroupId"] == group_id or naming.parse_name(group["GroupName"]) is None:
            continue
        permissions = [
            {
                **{k: rule[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in rule},
                "UserIdGroupPairs": [{"GroupId": group_id}],
            }
            for rule in group.get("IpPermissions", [])
            if any(pair.get("GroupId") == group_id for pair in rule.get("UserIdGroupPairs", []))
        ]
        if not permissions:
            continue
        try:
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=permissions)
        except ClientError as error:
            if not cleanup.is_not_found(error):  # the rule or the group went meanwhile
                raise
        revoked += len(permissions)
    return revoked


def _delete_security_group(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete the ALB's group after freeing it from rules that refer to it."""
    revoke_references(lab, resource.identifier)
    cleanup.retry_while(
        lab,
        lambda: lab.client("ec2").delete_security_group(GroupId=resource.identifier),
        ("DependencyViolation",),
        f"deleting {resource.identifier} (load balancer interfaces still attached)",
        900,
    )


RESOURCE_KINDS = [
    # The API forwards to the load balancer; a service registers its tasks behind it.
    cleanup.ResourceKind(
        LOAD_BALANCER_KIND,
        _find_load_balancers,
        _delete_load_balancer,
        after=("http api", "ecs service"),
    ),
    # A listener forwards to the target group (AWS: ResourceInUse); a service registers in it.
    cleanup.ResourceKind(
        TARGET_GROUP_KIND,
        _find_target_groups,
        _delete_target_group,
        after=(LOAD_BALANCER_KIND, "ecs service"),
    ),
    # The load balancer's network interfaces hold its security group.
    cleanup.ResourceKind(
        SECURITY_GROUP_KIND,
        _find_security_groups,
        _delete_security_group,
        after=(LOAD_BALANCER_KIND,),
    ),
]
