"""EC2 networking the course's patterns share: their security groups in the default VPC."""

from __future__ import annotations

from typing import Any

from . import naming
from .costs import Price
from .lab import Lab


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


# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "public_ipv4_hour": Price(0.005, "IP-hour"),
}
