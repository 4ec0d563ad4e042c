"""Container `secrets` on the live local cloud: each valueFrom form, each failure, nothing shown."""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import DefaultNetwork, ImageFactory, unique
from polling import wait_until

import helpers

PRINT_ENV_PY = textwrap.dedent(
    """
    import os
    for name in os.environ["SHOW"].split(","):
        print(f"{name}={os.environ.get(name, '<unset>')}", flush=True)
    """
)
DOCKERFILE = 'FROM python:3.12-slim\nWORKDIR /app\nCOPY env.py .\nCMD ["python", "env.py"]\n'
ASM = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
    "retrieval failed: unable to retrieve secret from asm: service call has been retried 1 "
    "time(s): "
)
SSM = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
    "retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 "
    "time(s): "
)


@pytest.fixture(scope="module")
def env(
    module_lab: helpers.Lab,
    build_image: ImageFactory,
    ecs_cluster: str,
    default_network: DefaultNetwork,
) -> Iterator[dict[str, Any]]:
    """A secret with two versions, an SSM SecureString, an image that prints its environment."""
    lab = module_lab
    image = build_image({"Dockerfile": DOCKERFILE, "env.py": PRINT_ENV_PY}, tag="v1")
    sm, ssm, ecs = lab.client("secretsmanager"), lab.client("ssm"), lab.client("ecs")
    created = sm.create_secret(
        Name=unique("pytest-db"), SecretString=json.dumps({"password": "old-pw-1", "user": "app"})
    )
    secret, first_version = created["ARN"], created["VersionId"]
    sm.put_secret_value(
        SecretId=secret, SecretString=json.dumps({"password": "new-pw-2", "user": "app"})
    )
    parameter = f"/{unique('pytest-app')}/api-key"
    ssm.put_parameter(Name=parameter, Value="param-value-3", Type="SecureString")
    parameter_arn = ssm.get_parameter(Name=parameter)["Parameter"]["ARN"]
    group = f"/ecs/{ecs_cluster}-secrets"
    definitions: list[str] = []

    def register(secrets: list[dict[str, str]]) -> str:
        """A Fargate task definition whose container prints the secrets' variables."""
        names = ",".join(s["name"] for s in secrets)
        arn = ecs.register_task_definition(
            family=unique("pytest-secrets"),
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "app",
                    "image": image.uri,
                    "environment": [{"name": "SHOW", "value": names}],
                    "secrets": secrets,
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": group,
                            "awslogs-region": lab.region,
                            "awslogs-create-group": "true",
                            "awslogs-stream-prefix": "s",
                        },
                    },
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        definitions.append(arn)
        return arn

    yield {
        "lab": lab,
        "ecs": ecs,
        "cluster": ecs_cluster,
        "network": default_network.awsvpc(subnets=1),
        "group": group,
        "secret": secret,
        "first_version": first_version,
        "parameter": parameter,
        "parameter_arn": parameter_arn,
        "register": register,
    }
    for arn in definitions:
        ecs.deregister_task_definition(taskDefinition=arn)
    sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
    ssm.delete_parameter(Name=parameter)
    with contextlib.suppress(ClientError):
        lab.client("logs").delete_log_group(logGroupName=group)


def run_until_stopped(env: dict, definition: str) -> dict:
    """Run one task and return its description once STOPPED."""
    ecs, cluster = env["ecs"], env["cluster"]
    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration=env["network"],
    )
    assert started["failures"] == []
    arn = started["tasks"][0]["taskArn"]

    def stopped() -> dict | None:
        task = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        return task if task["lastStatus"] == "STOPPED" else None

    return wait_until(stopped, what=f"task {arn} to stop", timeout=30)


def printed(env: dict, task: dict) -> dict[str, str]:
    """NAME=value lines the task's container printed, as a dict."""
    stream = f"s/app/{task['taskArn'].rsplit('/', 1)[-1]}"
    events = (
        env["lab"].client("logs").get_log_events(logGroupName=env["group"], logStreamName=stream)
    )
    return dict(e["message"].split("=", 1) for e in events["events"] if "=" in e["message"])


def test_each_secrets_form_reaches_the_environment_and_no_describe_shows_it(env):
    secret, version = env["secret"], env["first_version"]
    secrets = [
        {"name": "WHOLE", "valueFrom": secret},
        {"name": "KEY", "valueFrom": f"{secret}:password::"},
        {"name": "PREVIOUS", "valueFrom": f"{secret}:password:AWSPREVIOUS:"},
        {"name": "BY_VERSION", "valueFrom": f"{secret}:password::{version}"},
        {"name": "BY_NAME", "valueFrom": env["parameter"]},
        {"name": "BY_ARN", "valueFrom": env["parameter_arn"]},
    ]
    definition = env["register"](secrets)
    task = run_until_stopped(env, definition)
    assert task["containers"][0]["exitCode"] == 0, task.get("stoppedReason")
    values = printed(env, task)
    assert json.loads(values["WHOLE"]) == {"password": "new-pw-2", "user": "app"}
    assert values["KEY"] == "new-pw-2"
    assert values["PREVIOUS"] == values["BY_VERSION"] == "old-pw-1"
    assert values["BY_NAME"] == values["BY_ARN"] == "param-value-3"

    # DescribeTaskDefinition shows the references, as AWS does; no call shows a value.
    shown = env["ecs"].describe_task_definition(taskDefinition=definition)["taskDefinition"]
    assert shown["containerDefinitions"][0]["secrets"] == secrets
    described = env["ecs"].describe_tasks(cluster=env["cluster"], tasks=[task["taskArn"]])
    for answer in (shown, described):
        text = json.dumps(answer, default=str)
        assert not any(v in text for v in ("old-pw-1", "new-pw-2", "param-value-3"))


def test_each_secret_failure_stops_the_task_before_it_runs(env):
    secret = env["secret"]
    absent = f"{secret.rsplit(':', 1)[0]}:pytest-absent-AbCdEf"
    cases = [
        (
            absent,
            f"{ASM}failed to fetch secret {absent} from secrets manager: "
            "ResourceNotFoundException: Secrets Manager can't find the specified secret.",
        ),
        (
            f"{secret}:no_such_key::",
            f"{ASM}retrieved secret from Secrets Manager did not contain json key no_such_key",
        ),
        (
            f"{secret}:password:NO_SUCH_STAGE:",
            f"{ASM}failed to fetch secret {secret} from secrets manager: "
            "ResourceNotFoundException: Secrets Manager can't find the specified secret value "
            "for staging label: NO_SUCH_STAGE",
        ),
        ("/pytest/absent/parameter", f"{SSM}invalid ssm parameters: /pytest/absent/parameter"),
    ]
    for value_from, reason in cases:
        definition = env["register"]([{"name": "VALUE", "valueFrom": value_from}])
        task = run_until_stopped(env, definition)
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"] == reason
        container = task["containers"][0]
        assert "exitCode" not in container and container["reason"] == reason


def test_service_events_repeat_the_secret_failure(env):
    ecs, cluster, name = env["ecs"], env["cluster"], unique("pytest-nokey")
    definition = env["register"]([{"name": "VALUE", "valueFrom": f"{env['secret']}:nokey::"}])
    ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=definition,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration=env["network"],
    )
    expected = (
        f"(service {name}) was unable to place a task. Reason: {ASM}retrieved secret from "
        "Secrets Manager did not contain json key nokey."
    )

    def events() -> list[str]:
        service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        return [e["message"] for e in service["events"]]

    try:
        wait_until(lambda: expected in events(), what="the failure event", explain=events)
        service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        assert service["runningCount"] == 0
        assert service["deployments"][0]["failedTasks"] >= 1
    finally:
        ecs.delete_service(cluster=cluster, service=name, force=True)
