"""moto as the course needs it: managed IAM policies, ECS tasks stay up, EC2's dependency rules."""

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import helpers
from localcloud.server import LocalCloud


def test_aws_managed_policies_can_be_attached(lab, lambda_role):
    iam, role = lab.client("iam"), lambda_role.rsplit("/", 1)[-1]
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)


def test_moto_keeps_ecs_tasks_running_on_describe():
    """moto's own task records (under the ECS provider) must not drift towards STOPPED."""
    state = Path(tempfile.mkdtemp(prefix="localcloud-moto-"))
    cloud = LocalCloud(state, port=0)
    try:

        def ecs(operation: str, **params):
            return cloud.context.moto.call("ecs", operation, params, "us-east-1")

        ecs("CreateCluster", clusterName="pytest")
        ecs(
            "RegisterTaskDefinition",
            family="pytest",
            containerDefinitions=[{"name": "app", "image": "app:latest", "memory": 512}],
        )
        task = ecs("RunTask", cluster="pytest", taskDefinition="pytest", launchType="FARGATE")
        arn = task["tasks"][0]["taskArn"]
        statuses = {
            ecs("DescribeTasks", cluster="pytest", tasks=[arn])["tasks"][0]["lastStatus"]
            for _ in range(6)
        }
        assert statuses == {"RUNNING"}
    finally:
        cloud.close()
        shutil.rmtree(state, ignore_errors=True)


def test_a_group_named_by_another_groups_rule_is_not_deleted_until_the_rule_goes(lab):
    ec2 = lab.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    suffix = uuid.uuid4().hex[:6]
    source, target = (
        ec2.create_security_group(
            GroupName=f"pytest-{role}-{suffix}", Description="test", VpcId=vpc["VpcId"]
        )["GroupId"]
        for role in ("source", "target")
    )
    pair = [{"GroupId": source}]
    ec2.authorize_security_group_ingress(
        GroupId=target,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": pair}
        ],
    )
    ec2.authorize_security_group_ingress(  # a rule naming its own group does not hold it
        GroupId=source,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 81, "ToPort": 81, "UserIdGroupPairs": pair}
        ],
    )
    try:
        with pytest.raises(ClientError) as refused:
            ec2.delete_security_group(GroupId=source)
        assert refused.value.response["Error"] == {
            "Code": "DependencyViolation",
            "Message": f"resource {source} has a dependent object",
        }
        assert helpers.ec2.revoke_references(lab, source) == 1
        ec2.delete_security_group(GroupId=source)
    finally:
        for group in (source, target):
            with contextlib.suppress(ClientError):
                ec2.delete_security_group(GroupId=group)
