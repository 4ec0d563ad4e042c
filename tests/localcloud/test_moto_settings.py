"""moto is configured at start as the course needs (managed IAM policies, ECS tasks stay up)."""

import shutil
import tempfile
from pathlib import Path

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
