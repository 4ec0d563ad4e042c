"""A VPC function reaches public AWS endpoints only through a route, as on AWS.

No route: its call hangs until the function times out. An interface endpoint with private
DNS for the service: the call works. A function outside any VPC: unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live_fixtures import ZipFunctions, unique
from polling import wait_until

import helpers

CODE = {
    "app.py": (
        "import boto3\n"
        "def handler(event, context):\n"
        "    return boto3.client('sts').get_caller_identity()['Account']\n"
    )
}


@pytest.fixture(scope="module")
def isolated_vpc(module_lab: helpers.Lab) -> Iterator[dict[str, Any]]:
    """A VPC of the test's own (no NAT gateway, no endpoint), with a subnet and a group."""
    ec2 = module_lab.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=unique("pytest-vpc-fn"), Description="pytest", VpcId=vpc
    )["GroupId"]
    yield {"vpc": vpc, "subnet": subnet, "group": group}
    for endpoint in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "VpcEndpoints"
    ]:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])


def invoke(module_lab: helpers.Lab, name: str) -> helpers.lambda_.Invocation:
    return helpers.lambda_.invoke(module_lab, name, {})


def test_a_vpc_function_needs_a_route_to_reach_aws(
    module_lab: helpers.Lab, zip_functions: ZipFunctions, isolated_vpc: dict[str, Any]
) -> None:
    outside = zip_functions.create(CODE, "app.handler", Timeout=3)["FunctionName"]
    config = {"SubnetIds": [isolated_vpc["subnet"]], "SecurityGroupIds": [isolated_vpc["group"]]}
    inside = zip_functions.create(CODE, "app.handler", Timeout=3, VpcConfig=config)["FunctionName"]

    assert invoke(module_lab, outside).payload == "123456789012"  # no VPC: unaffected
    held = invoke(module_lab, inside)
    assert held.function_error == "Unhandled"
    assert "Task timed out after 3.00 seconds" in held.payload["errorMessage"]

    ec2 = module_lab.client("ec2")
    service = f"com.amazonaws.{module_lab.region}.sts"
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=isolated_vpc["vpc"], ServiceName=service,
        SubnetIds=[isolated_vpc["subnet"]], SecurityGroupIds=[isolated_vpc["group"]],
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]  # fmt: skip
    answered = wait_until(
        lambda: invoke(module_lab, inside).payload == "123456789012",
        what="the VPC function to reach STS through its interface endpoint",
    )
    assert answered
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
