"""Fargate tasks on the live local cloud: processes, lifecycle, logs, secrets, StopTask."""

from __future__ import annotations

import contextlib
import copy
import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import DefaultNetwork, ImageFactory
from polling import wait_until

import helpers
from helpers.naming import resource_name

TASK_PY = textwrap.dedent(
    """
    import os, signal, sys, time

    mode = os.environ.get("MODE", "ok")
    print("hello from", mode, flush=True)
    if mode == "ok":
        for i in range(3):
            print("line", i)
        sys.exit(0)
    if mode == "exit3":
        sys.exit(3)
    if mode == "env":
        print("COLOUR=" + os.environ.get("COLOUR", ""))
        print("PASSWORD=" + os.environ.get("DB_PASSWORD", ""))
        print("RAW=" + os.environ.get("RAW_SECRET", ""))
        sys.exit(0)
    if mode == "ddb":
        import boto3
        ddb = boto3.client("dynamodb")  # no endpoint in the code
        ddb.put_item(TableName=os.environ["TABLE"], Item={"id": {"S": "from-task"}})
        sys.exit(0)
    if mode == "sleep_term":
        signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), sys.exit(5)))
    if mode == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("sleeping", flush=True)
    time.sleep(60)
    """
)
DOCKERFILE = 'FROM python:3.12-slim\nWORKDIR /app\nCOPY task.py .\nCMD ["python", "task.py"]\n'
ORDER = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
]


@pytest.fixture(scope="module")
def ecs_env(
    module_lab: helpers.Lab,
    build_image: ImageFactory,
    ecs_cluster: str,
    default_network: DefaultNetwork,
) -> Iterator[dict[str, Any]]:
    """An image, task definitions, a secret and a table on a cluster; all removed at the end."""
    lab, unique = module_lab, uuid.uuid4().hex[:6]
    image = build_image({"Dockerfile": DOCKERFILE, "task.py": TASK_PY}, tag="v1")
    ecs, sm, ddb = lab.client("ecs"), lab.client("secretsmanager"), lab.client("dynamodb")
    secret = sm.create_secret(
        Name=resource_name("pytest", "17", f"db-{unique}"),
        SecretString=json.dumps({"password": "s3cret", "user": "app"}),
    )["ARN"]
    table = resource_name("pytest", "17", f"table-{unique}")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    group = f"/ecs/{ecs_cluster}"

    def register(
        family: str, image: str, create_group: str = "true", log_group: str = group
    ) -> str:
        """A FARGATE task definition without container-level memory."""
        container = {
            "name": "app",
            "image": image,
            "essential": True,
            "stopTimeout": 2,
            "environment": [{"name": "COLOUR", "value": "teal"}, {"name": "TABLE", "value": table}],
            "secrets": [
                {"name": "DB_PASSWORD", "valueFrom": f"{secret}:password::"},
                {"name": "RAW_SECRET", "valueFrom": secret},
            ],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group,
                    "awslogs-region": lab.region,
                    "awslogs-create-group": create_group,
                    "awslogs-stream-prefix": "job",
                },
            },
        }
        return ecs.register_task_definition(
            family=resource_name("pytest", "17", family),
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[container],
        )["taskDefinition"]["taskDefinitionArn"]

    env = {
        "lab": lab,
        "ecs": ecs,
        "cluster": ecs_cluster,
        "group": group,
        "table": table,
        "good": register(f"job-{unique}", image.uri),
        "tagged": register(f"tag-{unique}", image.tagged("v1")),
        "missing": register(f"missing-{unique}", image.tagged("nope")),
        "nogroup": register(f"nogroup-{unique}", image.uri, "false", f"/ecs/absent-{unique}"),
        "network": default_network.awsvpc(subnets=1),
    }
    yield env
    for key in ("good", "tagged", "missing", "nogroup"):
        ecs.deregister_task_definition(taskDefinition=env[key])
    sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
    ddb.delete_table(TableName=table)
    with contextlib.suppress(ClientError):
        lab.client("logs").delete_log_group(logGroupName=group)
    helpers.cleanup.teardown(lab, pattern="17", quiet=True)


def run(env: dict, definition: str, mode: str) -> dict:
    """Run one task with MODE set through a container override."""
    response = env["ecs"].run_task(
        cluster=env["cluster"],
        taskDefinition=env[definition],
        launchType="FARGATE",
        networkConfiguration=env["network"],
        startedBy=f"test-{mode}",
        overrides={
            "containerOverrides": [
                {"name": "app", "environment": [{"name": "MODE", "value": mode}]}
            ]
        },
    )
    assert response["failures"] == []
    return response["tasks"][0]


def wait_stopped(env: dict, arn: str, timeout: float = 15) -> tuple[dict, list[str]]:
    """Poll DescribeTasks until STOPPED; the distinct lastStatus values seen, in order."""
    seen: list[str] = []

    def stopped() -> dict | None:
        task = env["ecs"].describe_tasks(cluster=env["cluster"], tasks=[arn])["tasks"][0]
        if not seen or seen[-1] != task["lastStatus"]:
            seen.append(task["lastStatus"])
        return task if task["lastStatus"] == "STOPPED" else None

    task = wait_until(
        stopped,
        what=f"task {arn} to stop",
        timeout=timeout,
        interval=0.01,  # often enough to see every state it passes through
        explain=lambda: f"states seen: {seen}",
    )
    return task, seen


def log_lines(env: dict, task: dict) -> list[str]:
    """The task's awslogs stream `<prefix>/<container>/<task id>`."""
    stream = f"job/app/{task['taskArn'].rsplit('/', 1)[-1]}"
    events = (
        env["lab"].client("logs").get_log_events(logGroupName=env["group"], logStreamName=stream)
    )
    return [e["message"] for e in events["events"]]


def test_task_runs_to_completion_with_lifecycle_and_logs(ecs_env):
    started = run(ecs_env, "good", "ok")
    assert started["lastStatus"] == "PROVISIONING" and started["desiredStatus"] == "RUNNING"
    task, seen = wait_stopped(ecs_env, started["taskArn"])
    assert seen == [s for s in ORDER if s in seen], seen
    assert {"PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "STOPPED"} <= set(seen)
    assert task["desiredStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["containers"][0]["exitCode"] == 0
    assert task["containers"][0]["lastStatus"] == "STOPPED"
    times = [task[k] for k in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt")]
    times += [task[k] for k in ("stoppingAt", "executionStoppedAt", "stoppedAt")]
    assert times == sorted(times)
    assert log_lines(ecs_env, task) == ["hello from ok", "line 0", "line 1", "line 2"]
    # moto needed container memory for RunTask; the definition itself is unchanged.
    definition = ecs_env["ecs"].describe_task_definition(taskDefinition=ecs_env["good"])
    assert "memory" not in definition["taskDefinition"]["containerDefinitions"][0]


def test_exit_code_tagged_image_and_list_filters(ecs_env):
    started = run(ecs_env, "tagged", "exit3")
    ecs, cluster = ecs_env["ecs"], ecs_env["cluster"]
    task, _ = wait_stopped(ecs_env, started["taskArn"])
    assert task["containers"][0]["exitCode"] == 3
    assert task["stopCode"] == "EssentialContainerExited"
    stopped = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED", startedBy="test-exit3")
    assert stopped["taskArns"] == [started["taskArn"]]
    assert started["taskArn"] not in ecs.list_tasks(cluster=cluster)["taskArns"]


def test_environment_and_secrets_reach_the_process(ecs_env):
    task, _ = wait_stopped(ecs_env, run(ecs_env, "good", "env")["taskArn"])
    lines = log_lines(ecs_env, task)
    assert "COLOUR=teal" in lines and "PASSWORD=s3cret" in lines
    assert json.loads(next(line for line in lines if line.startswith("RAW="))[4:])["user"] == "app"


def test_task_uses_dynamodb_without_endpoint_in_code(ecs_env):
    task, _ = wait_stopped(ecs_env, run(ecs_env, "good", "ddb")["taskArn"], timeout=30)
    assert task["containers"][0]["exitCode"] == 0, log_lines(ecs_env, task)
    item = (
        ecs_env["lab"]
        .client("dynamodb")
        .get_item(TableName=ecs_env["table"], Key={"id": {"S": "from-task"}})
    )
    assert "Item" in item


def _wait_running(env: dict, arn: str) -> None:
    """Until the task is RUNNING and its process printed 'sleeping'."""

    def running() -> bool:
        task = env["ecs"].describe_tasks(cluster=env["cluster"], tasks=[arn])["tasks"][0]
        return task["lastStatus"] == "RUNNING" and "sleeping" in log_lines(env, task)

    wait_until(running, what=f"task {arn} to run and print 'sleeping'", timeout=15, interval=0.1)


def test_stop_task_sigterm_then_sigkill(ecs_env):
    ecs, cluster = ecs_env["ecs"], ecs_env["cluster"]
    polite = run(ecs_env, "good", "sleep_term")["taskArn"]
    stubborn = run(ecs_env, "good", "ignore_term")["taskArn"]
    _wait_running(ecs_env, polite)
    _wait_running(ecs_env, stubborn)
    answer = ecs.stop_task(cluster=cluster, task=polite, reason="enough")["task"]
    assert answer["desiredStatus"] == "STOPPED"
    began = time.time()
    ecs.stop_task(cluster=cluster, task=stubborn)
    task, _ = wait_stopped(ecs_env, polite)
    assert task["stopCode"] == "UserInitiated" and task["stoppedReason"] == "enough"
    assert task["containers"][0]["exitCode"] == 5
    assert "got SIGTERM" in log_lines(ecs_env, task)
    task, _ = wait_stopped(ecs_env, stubborn)
    assert time.time() - began >= 1.9
    assert task["containers"][0]["exitCode"] == 137
    assert task["stoppedReason"] == "Task stopped by user"


def test_missing_image_or_log_group_fails_to_start(ecs_env):
    missing = run(ecs_env, "missing", "ok")["taskArn"]
    nogroup = run(ecs_env, "nogroup", "ok")["taskArn"]
    task, _ = wait_stopped(ecs_env, missing)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError")
    assert "exitCode" not in task["containers"][0]
    task, _ = wait_stopped(ecs_env, nogroup)
    assert task["stopCode"] == "TaskFailedToStart"
    assert "log group does not exist" in task["stoppedReason"]


def test_describe_tasks_reports_unknown_tasks_as_missing(ecs_env):
    ecs, cluster = ecs_env["ecs"], ecs_env["cluster"]
    known = run(ecs_env, "good", "ok")["taskArn"]
    unknown_arn = known.rsplit("/", 1)[0] + "/" + "0" * 32
    answer = ecs.describe_tasks(cluster=cluster, tasks=[known, unknown_arn, "f" * 32])
    assert [t["taskArn"] for t in answer["tasks"]] == [known]
    assert answer["failures"] == [
        {"arn": unknown_arn, "reason": "MISSING"},
        {"arn": known.rsplit("/", 1)[0] + "/" + "f" * 32, "reason": "MISSING"},
    ]


def test_register_task_definition_checks_fargate_sizes_and_health_checks(ecs_env):
    ecs = ecs_env["ecs"]
    family = resource_name("pytest", "17", f"sizes-{uuid.uuid4().hex[:6]}")

    def register(cpu: str, memory: str, **extra: Any) -> dict:
        container = {"name": "app", "image": "example", **extra.pop("container", {})}
        return ecs.register_task_definition(
            family=family,
            requiresCompatibilities=["FARGATE"],
            networkMode=extra.pop("networkMode", "awsvpc"),
            cpu=cpu,
            memory=memory,
            containerDefinitions=[container],
        )["taskDefinition"]

    def refused(message: str, cpu: str, memory: str, **extra: Any) -> None:
        with pytest.raises(ClientError) as error:
            register(cpu, memory, **extra)
        assert error.value.response["Error"]["Code"] == "ClientException"
        assert error.value.response["Error"]["Message"] == message

    accepted = [("256", "2048"), ("4096", "30720"), ("8192", "20480"), ("16384", "122880")]
    accepted.append(("0.5 vCPU", "4 GB"))
    stored = []
    for cpu, memory in accepted:
        definition = register(cpu, memory)
        stored.append((definition["cpu"], definition["memory"]))
        ecs.deregister_task_definition(taskDefinition=definition["taskDefinitionArn"])
    assert stored[-1] == ("512", "4096"), "vCPU and GB forms are stored as units and MiB"
    for cpu, memory in [("256", "4096"), ("1024", "1024"), ("8192", "18432"), ("4096", "31744")]:
        refused(
            f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
            "See the Amazon ECS documentation for the valid values.",
            cpu,
            memory,
        )
    refused("Fargate only supports network mode 'awsvpc'.", "256", "512", networkMode="bridge")
    refused("Invalid 'cpu' setting for task.", "a lot", "512")

    check = {"command": ["CMD-SHELL", "exit 0"]}
    for field, value, bounds in [
        ("interval", 4, "between 5 and 300 seconds"),
        ("timeout", 61, "between 2 and 60 seconds"),
        ("retries", 0, "between 1 and 10"),
        ("startPeriod", 301, "between 0 and 300 seconds"),
    ]:
        refused(
            f"Invalid 'healthCheck' setting for container 'app': '{field}' must be {bounds}.",
            "256",
            "512",
            container={"healthCheck": {**check, field: value}},
        )
    kept = register("256", "512", container={"healthCheck": {**check, "interval": 5}})
    assert kept["containerDefinitions"][0]["healthCheck"]["interval"] == 5
    ecs.deregister_task_definition(taskDefinition=kept["taskDefinitionArn"])


def test_a_task_run_on_its_own_keeps_running_when_unhealthy(ecs_env):
    ecs, cluster = ecs_env["ecs"], ecs_env["cluster"]
    good = ecs.describe_task_definition(taskDefinition=ecs_env["good"])["taskDefinition"]
    failing = ["CMD", "python", "-c", "import sys; sys.exit(1)"]  # CMD: run without a shell
    container = {**good["containerDefinitions"][0], "secrets": []}
    container["healthCheck"] = {"command": failing, "interval": 5, "retries": 1}
    definition = ecs.register_task_definition(
        family=f"{good['family']}-unhealthy",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]
    arn = ecs.run_task(
        cluster=cluster,
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration=ecs_env["network"],
        overrides={
            "containerOverrides": [
                {"name": "app", "environment": [{"name": "MODE", "value": "sleep"}]}
            ]
        },
    )["tasks"][0]["taskArn"]

    def describe() -> dict:
        return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]

    try:
        assert describe()["healthStatus"] == "UNKNOWN"
        task = wait_until(
            lambda: (t := describe())["healthStatus"] == "UNHEALTHY" and t,
            what="the task to turn UNHEALTHY",
            timeout=20,
        )
        # AWS stops an unhealthy task only when a service runs it.
        assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
        assert task["containers"][0]["healthStatus"] == "UNHEALTHY"
    finally:
        ecs.stop_task(cluster=cluster, task=arn)
        ecs.deregister_task_definition(taskDefinition=definition)


def test_a_stopped_task_releases_its_network_interface_and_security_group(ecs_env, default_network):
    ecs, cluster, ec2 = ecs_env["ecs"], ecs_env["cluster"], ecs_env["lab"].client("ec2")
    group = ec2.create_security_group(
        GroupName=resource_name("pytest", "17", f"task-sg-{uuid.uuid4().hex[:6]}"),
        Description="pytest task group",
        VpcId=default_network.vpc_id,
    )["GroupId"]
    network = copy.deepcopy(ecs_env["network"])
    network["awsvpcConfiguration"]["securityGroups"] = [group]
    arn = ecs.run_task(
        cluster=cluster,
        taskDefinition=ecs_env["good"],
        launchType="FARGATE",
        networkConfiguration=network,
        overrides={
            "containerOverrides": [
                {"name": "app", "environment": [{"name": "MODE", "value": "sleep_term"}]}
            ]
        },
    )["tasks"][0]["taskArn"]

    def in_group() -> list[str]:
        found = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group]}])
        return [i["NetworkInterfaceId"] for i in found["NetworkInterfaces"]]

    try:
        _wait_running(ecs_env, arn)
        attachment = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["attachments"][0]
        details = {d["name"]: d["value"] for d in attachment["details"]}
        assert attachment["status"] == "ATTACHED"
        assert in_group() == [details["networkInterfaceId"]]
        with pytest.raises(ClientError) as refused:
            ec2.delete_security_group(GroupId=group)
        error = refused.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "DependencyViolation",
            f"resource {group} has a dependent object",
        )
        ecs.stop_task(cluster=cluster, task=arn)
        task, _ = wait_stopped(ecs_env, arn)
        assert task["attachments"][0]["status"] == "DELETED"
        assert in_group() == []
        with pytest.raises(ClientError) as gone:
            ec2.describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])
        assert gone.value.response["Error"]["Code"] == "InvalidNetworkInterfaceID.NotFound"
        ec2.delete_security_group(GroupId=group)
        group = ""
    finally:
        if group:
            ecs.stop_task(cluster=cluster, task=arn)
            wait_stopped(ecs_env, arn)
            ec2.delete_security_group(GroupId=group)
