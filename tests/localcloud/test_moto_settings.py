"""moto is configured at start as the course needs (managed IAM policies, ECS tasks stay up)."""

import json


def test_aws_managed_policies_can_be_attached(lab):
    iam = lab.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ],
    }
    iam.create_role(RoleName="pytest-managed", AssumeRolePolicyDocument=json.dumps(trust))
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.attach_role_policy(RoleName="pytest-managed", PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName="pytest-managed")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
    iam.detach_role_policy(RoleName="pytest-managed", PolicyArn=arn)
    iam.delete_role(RoleName="pytest-managed")


def test_ecs_tasks_do_not_drift_to_stopped_on_describe(lab):
    ecs = lab.client("ecs")
    ecs.create_cluster(clusterName="pytest")
    ecs.register_task_definition(
        family="pytest",
        containerDefinitions=[{"name": "app", "image": "app:latest", "memory": 512}],
    )
    task = ecs.run_task(cluster="pytest", taskDefinition="pytest", launchType="FARGATE")
    task = task["tasks"][0]["taskArn"]
    statuses = {
        ecs.describe_tasks(cluster="pytest", tasks=[task])["tasks"][0]["lastStatus"]
        for _ in range(6)
    }
    assert statuses == {"RUNNING"}
    ecs.stop_task(cluster="pytest", task=task)
    ecs.delete_cluster(cluster="pytest")
