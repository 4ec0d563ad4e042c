"""ECS services on the live local cloud: desiredCount, replacement, scaling, ALB, metrics."""

from __future__ import annotations

import contextlib
import json
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import DefaultNetwork, ImageFactory
from polling import wait_until

import helpers
from helpers.lab import local_endpoints
from helpers.naming import resource_name

SERVER_PY = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"healthy": True}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/exit":
                os._exit(3)
            if self.path == "/sick":
                state["healthy"] = False
            code = 500 if self.path == "/health" and not state["healthy"] else 200
            body = json.dumps({"pid": os.getpid(), "path": self.path}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    address = (os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080")))
    print("listening on", address[1], flush=True)
    ThreadingHTTPServer(address, Handler).serve_forever()
    """
)
DOCKERFILE = (
    "FROM python:3.12-slim\nWORKDIR /app\nCOPY server.py .\nEXPOSE 8080\n"
    'CMD ["python", "server.py"]\n'
)


def get(url: str) -> tuple[int, dict]:
    """GET a URL; (status, JSON body or {})."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


@pytest.fixture(scope="module")
def env(
    module_lab: helpers.Lab,
    build_image: ImageFactory,
    ecs_cluster: str,
    default_network: DefaultNetwork,
) -> Iterator[dict[str, Any]]:
    """An HTTP server image, a task definition and an ALB on a cluster; removed at the end."""
    lab, unique, cluster = module_lab, uuid.uuid4().hex[:6], ecs_cluster
    image = build_image({"Dockerfile": DOCKERFILE, "server.py": SERVER_PY}, tag="v1")
    ecs, elb = lab.client("ecs"), lab.client("elbv2")
    definition = ecs.register_task_definition(
        family=resource_name("pytest", "18", f"web-{unique}"),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "web",
                "image": image.uri,
                "essential": True,
                "stopTimeout": 2,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    subnets = default_network.subnet_ids[:2]
    balancer = elb.create_load_balancer(Name=f"e18-{unique}", Subnets=subnets)["LoadBalancers"][0]
    group = elb.create_target_group(
        Name=f"e18-{unique}",
        Protocol="HTTP",
        Port=8080,
        VpcId=default_network.vpc_id,
        TargetType="ip",
        HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5,
        HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
    )["TargetGroups"][0]
    elb.modify_target_group_attributes(
        TargetGroupArn=group["TargetGroupArn"],
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "1"}],
    )
    listener = elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )["Listeners"][0]
    yield {
        "lab": lab,
        "ecs": ecs,
        "elb": elb,
        "cluster": cluster,
        "definition": definition,
        "balancer": balancer,
        "group": group,
        "network": default_network.awsvpc(subnets=2),
        "unique": unique,
    }
    # The services' tasks leave the target group before it and its load balancer go.
    for arn in ecs.list_services(cluster=cluster)["serviceArns"]:
        ecs.delete_service(cluster=cluster, service=arn, force=True)
    wait_until(
        lambda: not ecs.list_tasks(cluster=cluster)["taskArns"], what="service tasks to stop"
    )
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_load_balancer(LoadBalancerArn=balancer["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=group["TargetGroupArn"])
    ecs.deregister_task_definition(taskDefinition=definition)
    helpers.cleanup.teardown(lab, pattern="18", quiet=True)


def describe(env: dict, name: str) -> dict:
    """The service's description."""
    return env["ecs"].describe_services(cluster=env["cluster"], services=[name])["services"][0]


def running_tasks(env: dict, name: str) -> list[dict]:
    """The service's tasks whose lastStatus is RUNNING."""
    arns = env["ecs"].list_tasks(cluster=env["cluster"], serviceName=name)["taskArns"]
    if not arns:
        return []
    tasks = env["ecs"].describe_tasks(cluster=env["cluster"], tasks=arns)["tasks"]
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


def two_running_without(env: dict, name: str, gone: str) -> set[str] | None:
    """The service's two running task ARNs, once `gone` is not one of them."""
    current = {t["taskArn"] for t in running_tasks(env, name)}
    return current if len(current) == 2 and gone not in current else None


def test_service_keeps_desired_count_replaces_and_scales(env):
    ecs, name = env["ecs"], f"plain-{env['unique']}"
    ecs.create_service(
        cluster=env["cluster"],
        serviceName=name,
        taskDefinition=env["definition"],
        desiredCount=2,
        launchType="FARGATE",
        networkConfiguration=env["network"],
    )
    ecs.get_waiter("services_stable").wait(
        cluster=env["cluster"], services=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    service = describe(env, name)
    assert (service["runningCount"], service["pendingCount"]) == (2, 0)
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    messages = [e["message"] for e in service["events"]]
    assert messages[0] == f"(service {name}) has reached a steady state."
    assert any(m.startswith(f"(service {name}) has started 2 tasks:") for m in messages)
    tasks = running_tasks(env, name)
    assert len(tasks) == 2
    assert all(t["group"] == f"service:{name}" for t in tasks)
    assert all(t["startedBy"] == service["deployments"][0]["id"] for t in tasks)

    victim = tasks[0]["taskArn"]
    ecs.stop_task(cluster=env["cluster"], task=victim, reason="chaos test")
    replaced = wait_until(lambda: two_running_without(env, name, victim), what="a replacement task")
    assert len(replaced) == 2
    stopped = ecs.describe_tasks(cluster=env["cluster"], tasks=[victim])["tasks"][0]
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("UserInitiated", "chaos test")

    # A task whose process dies is replaced too, and its record says how it ended.
    doomed = sorted(replaced)[0]
    direct = local_endpoints(env["lab"])["ecs"]["tasks"][doomed]["web:8080"]
    with contextlib.suppress(OSError):  # the process exits before it answers
        get(f"{direct}/exit")
    replaced = wait_until(
        lambda: two_running_without(env, name, doomed),
        what="a replacement for the exited task",
    )
    dead = ecs.describe_tasks(cluster=env["cluster"], tasks=[doomed])["tasks"][0]
    assert dead["stopCode"] == "EssentialContainerExited"
    assert dead["containers"][0]["exitCode"] == 3

    # A new deployment replaces every task, each old one stopped exactly once.
    first = service["deployments"][0]["id"]
    ecs.update_service(cluster=env["cluster"], service=name, forceNewDeployment=True)

    def rolled_out() -> dict | None:
        current = describe(env, name)
        (deployment, *others) = current["deployments"]
        done = (
            not others
            and deployment["id"] != first
            and deployment["rolloutState"] == "COMPLETED"
            and current["runningCount"] == 2
        )
        return current if done else None

    rolled = wait_until(rolled_out, what="the new deployment")
    fresh = {t["taskArn"] for t in running_tasks(env, name)}
    assert len(fresh) == 2 and not fresh & replaced
    assert {t["startedBy"] for t in running_tasks(env, name)} == {rolled["deployments"][0]["id"]}
    stop_events = [e["message"] for e in rolled["events"] if "has stopped" in e["message"]]
    for arn in replaced:
        assert sum(arn.rsplit("/", 1)[-1] in m for m in stop_events) == 1

    ecs.update_service(cluster=env["cluster"], service=name, desiredCount=0)
    wait_until(lambda: describe(env, name)["runningCount"] == 0, what="scale-in to 0")
    gone = ecs.describe_tasks(cluster=env["cluster"], tasks=sorted(fresh))["tasks"]
    assert {t["stopCode"] for t in gone} == {"ServiceSchedulerInitiated"}
    assert all(t["stoppedReason"].startswith("Scaling activity initiated by") for t in gone)
    with pytest.raises(ClientError) as refused:
        ecs.delete_cluster(cluster=env["cluster"])
    assert refused.value.response["Error"]["Code"] == "ClusterContainsServicesException"
    deleted = ecs.delete_service(cluster=env["cluster"], service=name)["service"]
    assert deleted["status"] in ("DRAINING", "INACTIVE")
    wait_until(lambda: describe(env, name)["status"] == "INACTIVE", what="INACTIVE", timeout=10)


def test_create_service_checks_what_aws_checks(env):
    ecs, elb = env["ecs"], env["elb"]
    lonely = elb.create_target_group(
        Name=f"e18-lonely-{env['unique']}",
        Protocol="HTTP",
        Port=8080,
        VpcId=env["group"]["VpcId"],
        TargetType="ip",
    )["TargetGroups"][0]["TargetGroupArn"]
    base = {
        "cluster": env["cluster"],
        "taskDefinition": env["definition"],
        "desiredCount": 1,
        "launchType": "FARGATE",
    }
    cases = [
        ({}, "Network Configuration must be provided"),
        (
            {
                "networkConfiguration": env["network"],
                "loadBalancers": [
                    {"targetGroupArn": lonely, "containerName": "web", "containerPort": 8080}
                ],
            },
            "does not have an associated load balancer",
        ),
        (
            {
                "networkConfiguration": env["network"],
                "loadBalancers": [
                    {
                        "targetGroupArn": env["group"]["TargetGroupArn"],
                        "containerName": "web",
                        "containerPort": 9999,
                    }
                ],
            },
            "The container web did not have a container port 9999 defined.",
        ),
        (
            {"networkConfiguration": env["network"], "healthCheckGracePeriodSeconds": 30},
            "only valid for services configured to use load balancers",
        ),
    ]
    try:
        for extra, message in cases:
            with pytest.raises(ClientError) as refused:
                ecs.create_service(serviceName=f"bad-{uuid.uuid4().hex[:6]}", **base, **extra)
            assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
            assert message in refused.value.response["Error"]["Message"]
        # A name in use: refused, unless the request repeats the service's clientToken.
        valid = {**base, "desiredCount": 0, "networkConfiguration": env["network"]}
        name = f"twice-{env['unique']}"
        created = ecs.create_service(serviceName=name, clientToken="first", **valid)["service"]
        again = ecs.create_service(serviceName=name, clientToken="first", **valid)["service"]
        assert again["serviceArn"] == created["serviceArn"]
        for token in ("other", None):
            extra = {"clientToken": token} if token else {}
            with pytest.raises(ClientError) as refused:
                ecs.create_service(serviceName=name, **valid, **extra)
            error = refused.value.response["Error"]
            assert error == {
                "Code": "InvalidParameterException",
                "Message": "Creation of service was not idempotent.",
            }
        arns = ecs.list_services(cluster=env["cluster"])["serviceArns"]
        assert arns.count(created["serviceArn"]) == 1
    finally:
        elb.delete_target_group(TargetGroupArn=lonely)


@pytest.mark.long
def test_service_behind_alb_registers_targets_and_replaces_unhealthy(env):
    ecs, elb, name = env["ecs"], env["elb"], f"web-{env['unique']}"
    group_arn = env["group"]["TargetGroupArn"]
    ecs.create_service(
        cluster=env["cluster"],
        serviceName=name,
        taskDefinition=env["definition"],
        desiredCount=2,
        launchType="FARGATE",
        networkConfiguration=env["network"],
        healthCheckGracePeriodSeconds=0,
        loadBalancers=[
            {"targetGroupArn": group_arn, "containerName": "web", "containerPort": 8080}
        ],
    )
    ecs.get_waiter("services_stable").wait(
        cluster=env["cluster"], services=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )

    # Stable means the tasks run (and are registered); the ALB decides when they are healthy.
    def healthy() -> list[dict]:
        found = elb.describe_target_health(TargetGroupArn=group_arn)["TargetHealthDescriptions"]
        states = sorted(h["TargetHealth"]["State"] for h in found)
        return found if states == ["healthy", "healthy"] else []

    health = wait_until(healthy, what="two healthy targets")
    tasks = running_tasks(env, name)
    ips = {t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] for t in tasks}
    assert {h["Target"]["Id"] for h in health} == ips

    url = env["lab"].url_for(env["balancer"])
    pids = {get(f"{url}/whoami")[1]["pid"] for _ in range(8)}
    assert len(pids) == 2, "the ALB spreads requests over both tasks"

    # One task turns sick: the ALB marks it unhealthy and the service replaces it.
    sick_pid = get(f"{url}/sick")[1]["pid"]
    wait_until(
        lambda: any(
            "is unhealthy in (target-group" in e["message"] for e in describe(env, name)["events"]
        ),
        what="the unhealthy event",
        timeout=40,
    )

    def state() -> str:
        events = [e["message"] for e in describe(env, name)["events"]]
        targets = elb.describe_target_health(TargetGroupArn=group_arn)["TargetHealthDescriptions"]
        return f"events: {events}\ntargets: {targets}"

    wait_until(
        lambda: describe(env, name)["runningCount"] == 2 and healthy(),
        what="a healthy replacement",
        timeout=60,
        explain=state,
    )
    assert sick_pid not in {get(f"{url}/whoami")[1]["pid"] for _ in range(8)}
    stopped = ecs.list_tasks(cluster=env["cluster"], desiredStatus="STOPPED")["taskArns"]
    reasons = {
        t["stoppedReason"]
        for t in ecs.describe_tasks(cluster=env["cluster"], tasks=stopped)["tasks"]
    }
    assert f"Task failed ELB health checks in (target-group {group_arn})" in reasons

    metrics = env["lab"].client("cloudwatch")
    dimensions = [
        {"Name": "ClusterName", "Value": env["cluster"]},
        {"Name": "ServiceName", "Value": name},
    ]

    def cpu() -> list[dict]:
        return metrics.get_metric_statistics(
            Namespace="AWS/ECS",
            MetricName="CPUUtilization",
            Dimensions=dimensions,
            StartTime=time.time() - 600,
            EndTime=time.time() + 60,
            Period=60,
            Statistics=["Average", "SampleCount"],
        )["Datapoints"]

    points = wait_until(cpu, what="AWS/ECS CPUUtilization", timeout=20)
    assert all(0 <= p["Average"] <= 100 * 4 for p in points)
    ecs.delete_service(cluster=env["cluster"], service=name, force=True)
    wait_until(
        lambda: (
            not elb.describe_target_health(TargetGroupArn=group_arn)["TargetHealthDescriptions"]
        ),
        what="targets deregistered",
    )


@pytest.mark.long
def test_container_health_checks_drive_task_replacement(env):
    ecs, cluster, name = env["ecs"], env["cluster"], f"checked-{env['unique']}"
    web = ecs.describe_task_definition(taskDefinition=env["definition"])["taskDefinition"]
    probe = (
        'python -c "import os, urllib.request; urllib.request.urlopen('
        "'http://127.0.0.1:' + os.environ['PORT'] + '/health', timeout=1)\""
    )
    container = {
        **web["containerDefinitions"][0],
        # AWS's minimums: a check every 5 s, one failure makes the container UNHEALTHY.
        "healthCheck": {"command": ["CMD-SHELL", probe], "interval": 5, "timeout": 2, "retries": 1},
    }
    definition = ecs.register_task_definition(
        family=f"{web['family']}-checked",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=definition,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration=env["network"],
    )

    def healthy_task() -> dict | None:
        tasks = running_tasks(env, name)
        return tasks[0] if len(tasks) == 1 and tasks[0]["healthStatus"] == "HEALTHY" else None

    try:
        first = wait_until(healthy_task, what="a HEALTHY task", timeout=30)
        assert first["containers"][0]["healthStatus"] == "HEALTHY"
        wait_until(
            lambda: describe(env, name)["events"][0]["message"].endswith("steady state."),
            what="a steady state once the task is HEALTHY",
        )
        direct = local_endpoints(env["lab"])["ecs"]["tasks"][first["taskArn"]]["web:8080"]
        assert get(f"{direct}/sick")[0] == 200
        first_id = first["taskArn"].rsplit("/", 1)[-1]
        event = f"(service {name}) (task {first_id}) failed container health checks."
        wait_until(
            lambda: event in [e["message"] for e in describe(env, name)["events"]],
            what="the health check event",
            timeout=30,
        )
        replacement = wait_until(
            lambda: (t := healthy_task()) and t["taskArn"] != first["taskArn"] and t,
            what="a HEALTHY replacement",
            timeout=40,
        )
        assert replacement["taskArn"] != first["taskArn"]
        stopped = ecs.describe_tasks(cluster=cluster, tasks=[first["taskArn"]])["tasks"][0]
        assert stopped["stopCode"] == "ServiceSchedulerInitiated"
        assert stopped["stoppedReason"] == "Task failed container health checks"
        assert stopped["healthStatus"] == stopped["containers"][0]["healthStatus"] == "UNHEALTHY"
    finally:
        ecs.delete_service(cluster=cluster, service=name, force=True)
        wait_until(lambda: describe(env, name)["status"] == "INACTIVE", what="INACTIVE")
        ecs.deregister_task_definition(taskDefinition=definition)
