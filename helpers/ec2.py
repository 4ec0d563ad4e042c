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


def released_group_kind(kind: str, name: str, after: tuple[str, ...]) -> cleanup.ResourceKind:
    """The teardown kind of the course's security groups named `-<name>`: each is deleted
    once no network interface holds it (`delete_released_security_group`)."""
    return cleanup.ResourceKind(
        kind,
        lambda lab: cleanup.security_groups_named(lab, kind, name),
        lambda lab, resource: delete_released_security_group(lab, resource.identifier),
        after=after,
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


ENDPOINT_KIND = "vpc endpoint"
ENDPOINT_GROUP_KIND = "vpc endpoint security group"
ENDPOINT_GROUP_SUFFIX = "-endpoint"
HTTPS = 443


def ensure_interface_endpoint(
    lab: Lab,
    pattern: str,
    service: str,
    *,
    vpc_id: str,
    subnet_ids: list[str],
    client_group_id: str,
) -> dict[str, Any]:
    """Get or create an interface VPC endpoint (private DNS) for one AWS service, e.g.
    "secretsmanager", reachable on 443 from `client_group_id` only.

    With private DNS the service's usual name (secretsmanager.<region>.amazonaws.com)
    resolves inside the VPC to the endpoint's network interfaces, one per subnet (at most
    one subnet per Availability Zone), so unchanged SDK code in a VPC function reaches the
    service without a NAT gateway. Billed per Availability Zone and hour, plus per GB
    (https://aws.amazon.com/privatelink/pricing/).
    """
    group = ensure_security_group(
        lab,
        pattern,
        f"{service}{ENDPOINT_GROUP_SUFFIX}",
        vpc_id,
        description=f"Interface endpoint for {service}: HTTPS from the course's functions",
        ledger_kind=ENDPOINT_GROUP_KIND,
    )
    allow_from_group(lab, group["GroupId"], client_group_id, HTTPS, "functions")
    name = lab.name(pattern, f"{service}-endpoint", 255)
    service_name = f"com.amazonaws.{lab.region}.{service}"
    client = lab.client("ec2")
    found = [
        endpoint
        for endpoint in _course_endpoints(client, vpc_id)
        if endpoint.get("ServiceName") == service_name
        and endpoint.get("State", "").lower() not in ("deleting", "deleted", "failed")
    ]
    if found:
        endpoint = found[0]
    else:
        endpoint = client.create_vpc_endpoint(
            VpcEndpointType="Interface",
            VpcId=vpc_id,
            ServiceName=service_name,
            SubnetIds=subnet_ids,
            SecurityGroupIds=[group["GroupId"]],
            PrivateDnsEnabled=True,
            TagSpecifications=[
                {
                    "ResourceType": "vpc-endpoint",
                    "Tags": naming.tag_list({"Name": name, **lab.tags(pattern)}),
                }
            ],
        )["VpcEndpoint"]
        lab.ledger.record(ENDPOINT_KIND, endpoint["VpcEndpointId"], pattern)
    endpoint_id = endpoint["VpcEndpointId"]

    def available() -> dict[str, Any] | None:
        current = client.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]
        return current if current.get("State", "").lower() == "available" else None

    return wait_for(
        available,
        what=f"interface endpoint for {service}",
        timeout=600,
        estimate=120 if lab.backend == "aws" else 1,
        interval=10 if lab.backend == "aws" else 0.3,
    )


def _course_endpoints(client: Any, vpc_id: str | None = None) -> list[dict[str, Any]]:
    """Course-tagged VPC endpoints (of one VPC, or all)."""
    filters = [{"Name": "tag:course", "Values": [naming.COURSE]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    return client.describe_vpc_endpoints(Filters=filters)["VpcEndpoints"]


def _endpoint_name(endpoint: dict[str, Any]) -> str:
    return next((t["Value"] for t in endpoint.get("Tags", []) if t["Key"] == "Name"), "")


def _find_endpoints(lab: Lab) -> Any:
    """Course interface endpoints (all runs), by their Name tag."""
    for endpoint in _course_endpoints(lab.client("ec2")):
        parts = naming.parse_name(_endpoint_name(endpoint))
        state = endpoint.get("State", "").lower()
        if parts is not None and state not in ("deleting", "deleted"):
            yield cleanup.Resource(
                ENDPOINT_KIND, endpoint["VpcEndpointId"], parts.pattern, parts.run_id
            )


def _delete_endpoint(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete an endpoint and wait until it is gone (its interfaces hold its security group)."""
    client = lab.client("ec2")
    result = client.delete_vpc_endpoints(VpcEndpointIds=[resource.identifier])
    for failure in result.get("Unsuccessful", []):
        message = failure.get("Error", {}).get("Message", "")
        if "NotFound" not in failure.get("Error", {}).get("Code", ""):
            raise RuntimeError(f"deleting {resource.identifier}: {message}")

    def gone() -> bool:
        try:
            found = client.describe_vpc_endpoints(VpcEndpointIds=[resource.identifier])
        except ClientError as error:
            if cleanup.is_not_found(error):
                return True
            raise
        return all(e.get("State", "").lower() == "deleted" for e in found["VpcEndpoints"])

    wait_for(
        gone,
        what=f"deleting {resource.identifier}",
        timeout=900,
        estimate=60 if lab.backend == "aws" else 1,
        interval=10 if lab.backend == "aws" else 0.3,
    )


def _find_endpoint_groups(lab: Lab) -> Any:
    """Course security groups of interface endpoints (named `<service>-endpoint`)."""
    paginator = lab.client("ec2").get_paginator("describe_security_groups")
    wanted = f"{naming.run_prefix()}*{ENDPOINT_GROUP_SUFFIX}"
    for page in paginator.paginate(Filters=[{"Name": "group-name", "Values": [wanted]}]):
        for group in page["SecurityGroups"]:
            parts = naming.parse_name(group["GroupName"])
            if parts is not None and parts.name.endswith(ENDPOINT_GROUP_SUFFIX):
                yield cleanup.Resource(
                    ENDPOINT_GROUP_KIND, group["GroupId"], parts.pattern, parts.run_id
                )


def _delete_endpoint_group(lab: Lab, resource: cleanup.Resource) -> None:
    delete_released_security_group(lab, resource.identifier)


RESOURCE_KINDS = [
    # The functions that call through the endpoint go first; its group after it.
    cleanup.ResourceKind(
        ENDPOINT_KIND, _find_endpoints, _delete_endpoint, after=("lambda function",)
    ),
    cleanup.ResourceKind(
        ENDPOINT_GROUP_KIND,
        _find_endpoint_groups,
        _delete_endpoint_group,
        after=("lambda function", ENDPOINT_KIND),
    ),
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "public_ipv4_hour": Price(0.005, "IP-hour"),
    # https://aws.amazon.com/privatelink/pricing/
    "interface_endpoint_az_hour": Price(0.01, "endpoint-AZ-hour", "plus $0.01 per GB processed"),
}
