"""ECS and S3 helpers without a cloud: Fargate sizes, revision diffs, lifecycle, IAM, names."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from helpers import ecs, naming, s3
from helpers.lab import Lab

ACCOUNT = "123456789012"
REPO_ARN = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/scd-unit-17-sagemaker-app"


def _request(lab: Lab, **changes) -> dict:
    settings = {
        "image_uri": "123.dkr.ecr.eu-west-1.amazonaws.com/app:latest",
        "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/exec",
        "log_group": "/ecs/scd-unit-17-job",
        "stream_prefix": "job",
        "environment": {"B": "2", "A": "1"},
    }
    settings.update(changes)
    return ecs.task_definition_request(lab, "17", "job", **settings)


def _as_described(request: dict) -> dict:
    """What DescribeTaskDefinition returns for a request: extra fields and defaults added."""
    described = copy.deepcopy(request)
    described.pop("tags")
    described.update(
        taskDefinitionArn="arn:aws:ecs:eu-west-1:1:task-definition/scd-unit-17-job:1",
        revision=1,
        status="ACTIVE",
        compatibilities=["EC2", "FARGATE"],
    )
    container = described["containerDefinitions"][0]
    container.update(cpu=0, mountPoints=[], volumesFrom=[], systemControls=[])
    container["environment"].reverse()  # order is not significant
    container["logConfiguration"]["secretOptions"] = []
    return described


@pytest.mark.parametrize(("cpu", "memory"), [("256", "512"), (256, 2048), ("1024", "8192")])
def test_valid_fargate_sizes(cpu, memory):
    assert ecs.check_fargate_size(cpu, memory) == (str(cpu), str(memory))


def test_invalid_cpu_names_the_field_and_values():
    with pytest.raises(ValueError, match=r"cpu='300'.*'256', '512', '1024'"):
        ecs.check_fargate_size("300", "512")


def test_invalid_memory_names_the_field_and_values():
    with pytest.raises(ValueError, match=r"memory='4096'.*cpu='256'.*512, 1024, 2048"):
        ecs.check_fargate_size("256", "4096")
    with pytest.raises(ValueError, match=r"memory='1000'.*8192 to 30720 in steps of 1024"):
        ecs.check_fargate_size("4096", "1000")


def test_request_is_fargate_awsvpc_with_awslogs_and_container_memory(offline_lab):
    request = _request(offline_lab, memory="1024", port=8080, secrets={"DB": "arn:secret"})
    assert request["family"] == "scd-unit-17-job"
    assert request["requiresCompatibilities"] == ["FARGATE"]
    assert request["networkMode"] == "awsvpc"
    assert request["runtimePlatform"] == {
        "operatingSystemFamily": "LINUX",
        "cpuArchitecture": "X86_64",
    }
    container = request["containerDefinitions"][0]
    assert container["memory"] == 1024
    assert container["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]
    assert container["secrets"] == [{"name": "DB", "valueFrom": "arn:secret"}]
    assert container["logConfiguration"]["options"] == {
        "awslogs-group": "/ecs/scd-unit-17-job",
        "awslogs-region": "eu-west-1",
        "awslogs-stream-prefix": "job",
        "awslogs-create-group": "true",
    }
    assert {"key": "pattern", "value": "17"} in request["tags"]
    with pytest.raises(ValueError, match="memory="):
        _request(offline_lab, memory="4096")


def test_no_new_revision_when_only_aws_defaults_differ(offline_lab):
    request = _request(offline_lab)
    assert ecs.needs_new_revision(None, request)
    assert not ecs.needs_new_revision(_as_described(request), request)


@pytest.mark.parametrize(
    "change",
    [
        {"environment": {"A": "1", "B": "3"}},
        {"image_uri": "other:latest"},
        {"cpu": "512", "memory": "1024"},
        {"command": ["python", "job.py"]},
        {"secrets": {"S": "arn:secret"}},
        {"task_role_arn": "arn:aws:iam::1:role/task"},
        {"stop_timeout": 10},
        {"stream_prefix": "other"},
        {"port": 80},
        {"health_check": ecs.container_health_check("/health", 8080)},
    ],
)
def test_new_revision_when_a_relevant_field_changes(offline_lab, change):
    latest = _as_described(_request(offline_lab))
    assert ecs.needs_new_revision(latest, _request(offline_lab, **change))


def test_lifecycle_frame_from_a_synthetic_result():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    offsets = {"createdAt": 0, "pullStartedAt": 20, "pullStoppedAt": 35, "startedAt": 40}
    stamps = {key: t0 + timedelta(seconds=s) for key, s in offsets.items()}
    stamps.update(stoppingAt=t0 + timedelta(seconds=70), stoppedAt=t0 + timedelta(seconds=100))
    result = ecs.TaskResult(
        task_arn="arn:aws:ecs:r:1:task/c/abc",
        task_id="abc",
        last_status="STOPPED",
        exit_codes={"app": 0},
        stop_code="EssentialContainerExited",
        stopped_reason="Essential container in task exited",
        timestamps=stamps,
        statuses_seen=["PROVISIONING", "RUNNING", "STOPPED"],
    )
    frame = ecs.lifecycle_frame(result)
    assert list(frame.columns) == ["phase", "start", "end", "seconds"]
    assert list(frame["phase"]) == [
        "provisioning",
        "pulling image",
        "starting",
        "running",
        "stopping",
    ]
    assert list(frame["seconds"]) == [20.0, 15.0, 5.0, 30.0, 30.0]
    assert result.exit_code == 0


def test_task_result_from_describe_tasks_entry():
    task = {
        "taskArn": "arn:aws:ecs:r:1:task/scd-x-17-c/0123abcd",
        "lastStatus": "STOPPED",
        "containers": [{"name": "app", "exitCode": 3}, {"name": "sidecar"}],
        "stopCode": "EssentialContainerExited",
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
    }
    result = ecs.task_result(task, ["RUNNING", "STOPPED"])
    assert result.task_id == "0123abcd"
    assert result.exit_codes == {"app": 3, "sidecar": None}
    assert result.timestamps["createdAt"] == task["createdAt"]
    assert result.timestamps["stoppedAt"] is None
    frame = ecs.lifecycle_frame(result)
    assert frame["seconds"].isna().all()


def test_execution_role_statements_are_exact(offline_lab):
    secret = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:db-AbCdEf"
    statements = ecs.execution_role_statements(
        offline_lab, log_group="/ecs/scd-unit-17-job", repository_arn=REPO_ARN, secret_arns=[secret]
    )
    assert statements == [
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "PullOneRepository",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": REPO_ARN,
        },
        {
            "Sid": "OwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/ecs/scd-unit-17-job:*",
        },
        {
            "Sid": "ReadGivenSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [secret],
        },
    ]
    without = ecs.execution_role_statements(
        offline_lab, log_group="/ecs/scd-unit-17-job", repository_arn=REPO_ARN
    )
    assert [s["Sid"] for s in without] == ["EcrLogin", "PullOneRepository", "OwnLogGroupOnly"]


def test_log_group_name_is_found_by_log_teardown(offline_lab):
    group = ecs.log_group_name(offline_lab, "17", "job")
    assert group == "/ecs/scd-unit-17-job"
    assert naming.parse_name(group.removeprefix("/ecs/")).pattern == "17"


def test_bucket_name_has_stable_hashed_suffix_not_the_account_id(offline_lab):
    name = s3.bucket_name(offline_lab, "17", "results")
    assert name == s3.bucket_name(offline_lab, "17", "results")
    assert ACCOUNT not in name
    assert len(name) <= 63
    parts = naming.parse_name(name)
    assert (parts.run_id, parts.pattern) == ("unit", "17")
    assert parts.name.startswith("results-") and len(parts.name) == len("results-") + 6
    assert s3.account_suffix("another-account") != s3.account_suffix(ACCOUNT)


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "RunTask")


def test_calls_are_retried_while_ecs_cannot_assume_a_role_yet(monkeypatch):
    monkeypatch.setattr("helpers.waiting.time.sleep", lambda seconds: None)
    answers = iter(
        [
            _client_error("InvalidParameterException", "Unable to assume the service linked role."),
            _client_error("InvalidParameterException", "ECS was unable to assume the role 'r'."),
            {"tasks": ["t"]},
        ]
    )

    def call() -> dict:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert ecs.tasks.while_roles_propagate(call, what="roles") == {"tasks": ["t"]}

    def other_error() -> dict:
        raise _client_error("InvalidParameterException", "No Container Instances were found")

    with pytest.raises(ClientError, match="No Container Instances"):  # other errors surface
        ecs.tasks.while_roles_propagate(other_error, what="roles")
