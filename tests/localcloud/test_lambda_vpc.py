"""VpcConfig of Lambda functions: checked against EC2, reported with the subnets' VPC id."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import DefaultNetwork, ZipFunctions, unique

import helpers

CODE = {"app.py": "def handler(event, context):\n    return {'ok': True}\n"}


@pytest.fixture(scope="module")
def security_group(module_lab: helpers.Lab, default_network: DefaultNetwork) -> Any:
    """A security group in the default VPC, deleted at the end of the module."""
    ec2 = module_lab.client("ec2")
    group = ec2.create_security_group(
        GroupName=unique("pytest-lambda-sg"), Description="pytest", VpcId=default_network.vpc_id
    )["GroupId"]
    yield group
    ec2.delete_security_group(GroupId=group)


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_vpc_config_is_reported_with_the_subnets_vpc(
    module_lab, zip_functions: ZipFunctions, default_network, security_group
):
    subnets = default_network.subnet_ids[:2]
    config = {"SubnetIds": subnets, "SecurityGroupIds": [security_group]}
    created = zip_functions.create(CODE, "app.handler", VpcConfig=config)
    expected = {**config, "VpcId": default_network.vpc_id, "Ipv6AllowedForDualStack": False}
    assert created["VpcConfig"] == expected

    client = module_lab.client("lambda")
    name = created["FunctionName"]
    assert client.get_function(FunctionName=name)["Configuration"]["VpcConfig"] == expected
    assert client.get_function_configuration(FunctionName=name)["VpcConfig"] == expected
    assert client.invoke(FunctionName=name)["StatusCode"] == 200

    detached = client.update_function_configuration(
        FunctionName=name, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
    )
    empty = {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": "", "Ipv6AllowedForDualStack": False}
    assert detached["VpcConfig"] == empty
    assert client.get_function_configuration(FunctionName=name)["VpcConfig"] == empty


def test_bad_vpc_configs_get_lambdas_errors(
    module_lab, zip_functions: ZipFunctions, default_network, security_group
):
    subnets = default_network.subnet_ids[:1]
    missing_subnet = {
        "SubnetIds": ["subnet-0123456789abcdef0"],
        "SecurityGroupIds": [security_group],
    }
    code, message = _error(
        lambda: zip_functions.create(CODE, "app.handler", VpcConfig=missing_subnet)
    )
    assert code == "InvalidParameterValueException"
    assert "DescribeSubnets" in message and "subnet-0123456789abcdef0" in message

    missing_group = {"SubnetIds": subnets, "SecurityGroupIds": ["sg-0123456789abcdef0"]}
    code, message = _error(
        lambda: zip_functions.create(CODE, "app.handler", VpcConfig=missing_group)
    )
    assert code == "InvalidParameterValueException" and "DescribeSecurityGroups" in message

    one_sided = {"SubnetIds": subnets, "SecurityGroupIds": []}
    code, message = _error(lambda: zip_functions.create(CODE, "app.handler", VpcConfig=one_sided))
    assert (code, message) == (
        "InvalidParameterValueException",
        "SubnetIds and SecurityIds must coexist or be both empty list.",
    )

    ec2 = module_lab.client("ec2")
    other_vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    try:
        group = ec2.create_security_group(
            GroupName=unique("pytest-other"), Description="pytest", VpcId=other_vpc
        )["GroupId"]
        elsewhere = {"SubnetIds": subnets, "SecurityGroupIds": [group]}
        code, message = _error(
            lambda: zip_functions.create(CODE, "app.handler", VpcConfig=elsewhere)
        )
        assert code == "InvalidParameterValueException" and group in message
        ec2.delete_security_group(GroupId=group)
    finally:
        ec2.delete_vpc(VpcId=other_vpc)
