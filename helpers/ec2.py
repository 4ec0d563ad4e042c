"""EC2 networking the course's patterns share: their security groups in the default VPC."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from . import cleanup, naming
from .costs import Price
from .lab import Lab
from .waiting import wait_for


def ensure_security_group(
    lab: Lab, pattern: str, name: str, vpc_id: str, *, description: str, ledger_kind: str
) -> dict[str, Any]:
    """Get or create the course's tagged security group `<prefix>-<name>` in the VPC.

    Returns the group as describe_security_groups shows it (GroupId, IpPermissions); a new
    group has no inbound rules and AWS's default all-outbound egress.
    """
    group_name = lab.name(pattern, name, 255)
    ec2 = lab.client("ec2")
    found = ec2.describe_security_groups(
        Filters=[
            {"Name": "group-name", "Values": [group_name]},
            {"Name": "vpc-id", "Values": [vpc_id]},
        ]
    )["SecurityGroups"]
    if found:
        return found[0]
    group_id = ec2.create_security_group(
        GroupName=group_name,
        Description=description,
        VpcId=vpc_id,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": naming.tag_list(lab.tags(pattern))}
        ],
    )["GroupId"]
    lab.ledger.record(ledger_kind, group_id, pattern)
    return {"GroupId": group_id, "GroupName": group_name, "IpPermissions": []}


def allow_from_group(lab: Lab, group_id: str, source_group_id: str, port: int, who: str) -> None:
    """Let members of `source_group_id` reach `group_id` on one TCP port (once)."""
    permission = {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "UserIdGroupPairs": [{"GroupId": source_group_id, "Description": f"from {who}"}],
    }
    try:
        lab.client("ec2").authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[permission]
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
            raise


def revoke_references(lab: Lab, group_id: str) -> int:
    """Remove the inbound rules of other groups that name `group_id`; return how many.

    EC2 refuses to delete a group that another group's rule refers to (DependencyViolation).
    """
    client = lab.client("ec2")
    revoked = 0
    pages = client.get_paginator("describe_security_groups").paginate()
    for group in (g for page in pages for g in page["SecurityGroups"]):
        for permission in group.get("IpPermissions", []):
            pairs = [p for p in permission.get("UserIdGroupPairs", []) if p["GroupId"] == group_id]
            if not pairs or group["GroupId"] == group_id:
                continue
            rule = {
                k: v for k, v in permission.items() if k in ("IpProtocol", "FromPort", "ToPort")
            }
            rule["UserIdGroupPairs"] = pairs  # as described: moto matches the whole pair
            client.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[rule])
            revoked += 1
    return revoked


def wait_for_interfaces(lab: Lab, group_id: str) -> None:
    """Wait until no network interface uses the group, showing which ones are left.

    A VPC Lambda function's interfaces outlive its detach or delete: Lambda releases them
    when it no longer needs them, often 20 to 40 minutes later on AWS, and nothing speeds
    that up. Until then EC2 refuses to delete the group (DependencyViolation). Interrupting
    this wait loses nothing: re-run the teardown later and it picks up where it stopped.
    """
    client = lab.client("ec2")

    def none_left() -> bool:
        found = client.describe_network_interfaces(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        )["NetworkInterfaces"]
        return not found

    wait_for(
        none_left,
        what=f"network interfaces of {group_id} to be released (AWS: often 20-40 min)",
        pace=lab.pace.lambda_interfaces_released,
        hint=(
            "Lambda still holds interfaces in this security group. Run the teardown again "
            "later: it deletes whatever is free by then."
        ),
    )


def delete_released_security_group(lab: Lab, group_id: str) -> None:
    """Remove rules that name the group, wait for its network interfaces, then delete it."""
    revoke_references(lab, group_id)
    wait_for_interfaces(lab, group_id)
    cleanup.retry_while(
        lab,
        lambda: lab.client("ec2").delete_security_group(GroupId=group_id),
        ("DependencyViolation",),
        f"deleting {group_id} (network interfaces still attached)",
        600,
    )


# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "public_ipv4_hour": Price(0.005, "IP-hour"),
}
