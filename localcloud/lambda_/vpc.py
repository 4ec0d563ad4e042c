"""A function's VpcConfig: checked against moto's EC2 records, reported with its VPC id.

Lambda answers CreateFunction, UpdateFunctionConfiguration, GetFunction and
GetFunctionConfiguration with `VpcConfig` = {SubnetIds, SecurityGroupIds, VpcId,
Ipv6AllowedForDualStack}, the VpcId being the subnets' VPC
(https://docs.aws.amazon.com/lambda/latest/api/API_VpcConfigResponse.html). Detaching a
function (empty SubnetIds and SecurityGroupIds) leaves `VpcId` empty. moto reports a fixed
`vpc-123abc` and checks nothing, so this module derives the id and refuses what Lambda refuses:
subnets or security groups that do not exist, one list without the other, subnets of several
VPCs, security groups of another VPC.
"""

from __future__ import annotations

from typing import Any

from ..motogateway import MotoGateway
from ..protocols import ServiceError

MAX_SUBNETS = 16  # Lambda's limit per function (VpcConfig.SubnetIds)
MAX_SECURITY_GROUPS = 5


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message, 400)


def check(moto: MotoGateway, config: dict[str, Any] | None, region: str) -> str:
    """The VPC id of a requested VpcConfig ("" for none or a detach); raise Lambda's 400s."""
    if not config:
        return ""
    subnets = list(config.get("SubnetIds") or [])
    groups = list(config.get("SecurityGroupIds") or [])
    if bool(subnets) != bool(groups):
        raise _invalid("SubnetIds and SecurityIds must coexist or be both empty list.")
    if not subnets:
        return ""
    if len(subnets) > MAX_SUBNETS or len(groups) > MAX_SECURITY_GROUPS:
        raise _invalid(
            f"A function can have at most {MAX_SUBNETS} subnets and "
            f"{MAX_SECURITY_GROUPS} security groups in its VpcConfig."
        )
    vpcs = {s["VpcId"] for s in _describe(moto, region, "Subnets", subnets)}
    if len(vpcs) != 1:
        raise _invalid("The subnets of a function's VpcConfig must all be in the same VPC.")
    vpc = vpcs.pop()
    for group in _describe(moto, region, "SecurityGroups", groups):
        if group["VpcId"] != vpc:
            raise _invalid(
                f"Security group {group['GroupId']} is not in VPC {vpc}, the VPC of the subnets."
            )
    return vpc


def vpc_of(moto: MotoGateway, config: dict[str, Any] | None, region: str) -> str:
    """The VPC id of a stored VpcConfig ("" if it has no subnets or they are gone)."""
    subnets = list((config or {}).get("SubnetIds") or [])
    if not subnets:
        return ""
    try:
        found = _describe(moto, region, "Subnets", subnets[:1])
    except ServiceError:
        return ""
    return found[0]["VpcId"] if found else ""


def report(configuration: dict[str, Any], vpc_id: str) -> dict[str, Any]:
    """Put Lambda's VpcConfig shape into a FunctionConfiguration from moto."""
    stored = configuration.get("VpcConfig")
    if stored is None:
        return configuration
    configuration["VpcConfig"] = {
        "SubnetIds": list(stored.get("SubnetIds") or []),
        "SecurityGroupIds": list(stored.get("SecurityGroupIds") or []),
        "VpcId": vpc_id,
        "Ipv6AllowedForDualStack": bool(stored.get("Ipv6AllowedForDualStack", False)),
    }
    return configuration


def _describe(moto: MotoGateway, region: str, kind: str, ids: list[str]) -> list[dict[str, Any]]:
    """EC2 subnets or security groups by id; Lambda's wording when one does not exist."""
    operation, key = (
        ("DescribeSubnets", "SubnetIds")
        if kind == "Subnets"
        else ("DescribeSecurityGroups", "GroupIds")
    )
    try:
        return moto.call("ec2", operation, {key: ids}, region)[kind]
    except ServiceError as error:
        raise _invalid(
            f"Error occurred while {operation}. EC2 Error Code: {error.code}. "
            f"EC2 Error Message: {error.message}"
        ) from None
