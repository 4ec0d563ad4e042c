"""ECS and S3 helpers on the live local cloud: clusters, task definitions, run_task, teardown.

What the helpers ask for is checked here; how the local cloud then runs the tasks is
tests/localcloud/test_ecs_tasks.py's subject.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

import helpers
from helpers import cleanup, ecr, ecs, images, s3

PATTERN = "17"


@pytest.fixture
def lab17(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-17 resources are torn down after the test, even when it fails."""
    yield lab
    cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def _unique(prefix: str) -> str:
    """A short name of its own per test."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _task_definition(lab: helpers.Lab, family: str, **changes) -> dict:
    """A task definition with an execution role for its own log group and repository."""
    repository = ecr.ensure_repository(lab, PATTERN, "sagemaker-job")
    group = ecs.log_group_name(lab, PATTERN, family)
    role = ecs.task_execution_role(
        lab, PATTERN, f"{family}-exec", log_group=group, repository_arn=repository["repositoryArn"]
    )
    settings = {
        "image_uri": f"{repository['repositoryUri']}:latest",
        "execution_role_arn": role["Arn"],
        "log_group": group,
        "stream_prefix": "job",
        "environment": {"MODE": "one"},
        **changes,
    }
    return ecs.ensure_task_definition(lab, PATTERN, family, **settings)


def test_ensure_cluster_is_idempotent_fargate_only_and_tagged(lab17):
    name = _unique("cl")
    first = ecs.ensure_cluster(lab17, PATTERN, name)
    second = ecs.ensure_cluster(lab17, PATTERN, name)
    assert first["clusterArn"] == second["clusterArn"]
    assert first["clusterName"] == f"scd-pytest-17-{name}"
    assert second["status"] == "ACTIVE"
    described = lab17.client("ecs").describe_clusters(
        clusters=[first["clusterArn"]], include=["TAGS", "SETTINGS"]
    )["clusters"][0]
    assert set(described["capacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    assert described["defaultCapacityProviderStrategy"][0]["capacityProvider"] == "FARGATE"
    assert {"key": "pattern", "value": PATTERN} in described["tags"]


def test_task_definition_registers_once_and_a_changed_env_makes_revision_2(lab17):
    family = _unique("td")
    first = _task_definition(lab17, family)
    again = _task_definition(lab17, family)
    assert first["revision"] == 1
    assert again["taskDefinitionArn"] == first["taskDefinitionArn"]
    changed = _task_definition(lab17, family, environment={"MODE": "two"})
    assert changed["revision"] == 2
    assert changed["containerDefinitions"][0]["environment"] == [{"name": "MODE", "value": "two"}]
    assert _task_definition(lab17, family, environment={"MODE": "two"})["revision"] == 2


def test_run_task_returns_an_arn_in_the_default_vpc_with_a_closed_sg(lab17):
    cluster = ecs.ensure_cluster(lab17, PATTERN, _unique("cl"))
    definition = _task_definition(lab17, _unique("td"))
    task_arn = ecs.run_task(lab17, cluster["clusterArn"], definition["taskDefinitionArn"])
    assert task_arn.startswith("arn:aws:ecs:") and ":task/" in task_arn
    ec2 = lab17.client("ec2")
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [lab17.name(PATTERN, "task-sg")]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    assert groups[0]["IpPermissions"] == []
    assert {"Key": "pattern", "Value": PATTERN} in groups[0]["Tags"]
    # A second run re-uses the same group.
    ecs.run_task(lab17, cluster["clusterArn"], definition["taskDefinitionArn"])
    again = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [lab17.name(PATTERN, "task-sg")]}]
    )["SecurityGroups"]
    assert [g["GroupId"] for g in again] == [groups[0]["GroupId"]]


def test_run_task_refuses_a_non_course_cluster(lab17):
    with pytest.raises(ValueError, match="not a course cluster"):
        ecs.run_task(lab17, "default", "arn:aws:ecs:us-east-1:1:task-definition/x:1")


def test_bucket_put_and_read_json(lab17):
    bucket = s3.ensure_bucket(lab17, PATTERN, "results")
    assert s3.ensure_bucket(lab17, PATTERN, "results") == bucket
    client = lab17.client("s3")
    assert client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"][
        "BlockPublicAcls"
    ]
    rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    s3.put_json(lab17, bucket, "out/result.json", {"rows": 3})
    assert s3.wait_for_object(lab17, bucket, "out/result.json", timeout=5)["ContentLength"] > 0
    assert s3.read_json(lab17, bucket, "out/result.json") == {"rows": 3}


SLEEPER = 'FROM python:3.12-slim\nCMD ["python", "-c", "import time; time.sleep(60)"]\n'


def test_teardown_removes_everything_of_pattern_17_and_a_second_finds_nothing(lab17, tmp_path):
    (tmp_path / "Dockerfile").write_text(SLEEPER)  # a task that stays RUNNING until stopped
    repository = ecr.ensure_repository(lab17, PATTERN, "sagemaker-job")
    image = images.build_and_push(lab17, repository, tmp_path)
    cluster = ecs.ensure_cluster(lab17, PATTERN, "cluster")
    definition = _task_definition(lab17, "job", image_uri=image.image_uri)
    _task_definition(lab17, "job", image_uri=image.image_uri, environment={"MODE": "two"})
    task_arn = ecs.run_task(lab17, cluster["clusterArn"], definition["taskDefinitionArn"])
    bucket = s3.ensure_bucket(lab17, PATTERN, "results")
    s3.put_json(lab17, bucket, "a.json", [1])
    group = ecs.log_group_name(lab17, PATTERN, "job")
    logs = lab17.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)  # as awslogs-create-group does

    kinds = {r.kind for r in cleanup.find_resources(lab17, PATTERN)}
    assert {
        ecs.TASK_KIND,
        ecs.TASK_DEFINITION_KIND,
        ecs.CLUSTER_KIND,
        ecs.SECURITY_GROUP_KIND,
        s3.KIND,
        "log group",
    } <= kinds

    rows = cleanup.teardown(lab17, pattern=PATTERN, quiet=True)
    assert all(row["result"] in ("deleted", "already gone") for row in rows)
    stopped = ecs.wait_for_task(lab17, cluster["clusterArn"], task_arn, timeout=60)
    assert stopped.last_status == "STOPPED" and stopped.statuses_seen[-1] == "STOPPED"
    assert len(ecs.lifecycle_frame(stopped)) == len(ecs.PHASES)
    families = lab17.client("ecs").list_task_definitions(
        familyPrefix=lab17.name(PATTERN, "job"), status="ACTIVE"
    )["taskDefinitionArns"]
    assert families == []
    assert cleanup.find_resources(lab17, PATTERN) == []
    assert cleanup.teardown(lab17, pattern=PATTERN, quiet=True) == []


STUBBORN = (  # a task that ignores SIGTERM: ECS stops it with SIGKILL after its stopTimeout
    'FROM python:3.12-slim\nCMD ["python", "-c", "import signal, time; '
    'signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"]\n'
)


def test_ensure_service_waits_for_a_deleted_service_of_its_name_to_drain(lab17, tmp_path):
    (tmp_path / "Dockerfile").write_text(STUBBORN)
    repository = ecr.ensure_repository(lab17, PATTERN, "sagemaker-job")
    image = images.build_and_push(lab17, repository, tmp_path)
    cluster = ecs.ensure_cluster(lab17, PATTERN, "svc")["clusterArn"]
    definition = _task_definition(lab17, "svc", image_uri=image.image_uri, stop_timeout=3)
    vpc_id, _ = ecs.default_subnets(lab17)
    group = ecs.ensure_task_security_group(lab17, PATTERN, vpc_id)
    first = ecs.ensure_service(
        lab17, cluster, "api", definition["taskDefinitionArn"], security_group_id=group
    )
    ecs.wait_for_steady_state(lab17, cluster, first["serviceName"])
    client = lab17.client("ecs")
    client.delete_service(cluster=cluster, service=first["serviceName"], force=True)
    assert ecs.describe_service(lab17, cluster, first["serviceName"])["status"] == "DRAINING"

    again = ecs.ensure_service(
        lab17, cluster, "api", definition["taskDefinitionArn"], security_group_id=group
    )
    assert again["status"] == "ACTIVE" and again["serviceArn"] == first["serviceArn"]
    services = client.describe_services(cluster=cluster, services=[first["serviceName"]])
    assert [s["status"] for s in services["services"]] == ["ACTIVE"]
