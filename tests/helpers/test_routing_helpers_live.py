"""ALB and HTTP API helpers on the live local cloud: get-or-create, convergence, teardown.

Only what the helpers create is checked here, so no traffic is sent and `lab.url_for` is not
relied on; traffic through the local ALB and HTTP APIs is the subject of
tests/localcloud/test_elbv2.py and tests/localcloud/test_apigatewayv2.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers
from helpers import apigatewayv2, cleanup, ecs, elbv2, iam, lambda_

PATTERN = "95"  # used by no notebook, so a failed teardown here never hides a notebook's
ROUTING_KINDS = {"load balancer", "target group", "alb security group", "ecs task security group"}


@pytest.fixture
def lab95(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-95 resources are torn down after the test, even when it fails."""
    cleanup.teardown(lab, pattern=PATTERN, quiet=True)  # leftovers of an interrupted run
    yield lab
    cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def _task_group_rules(lab: helpers.Lab, group_id: str) -> list[dict]:
    """The ingress rules of one group."""
    groups = lab.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return groups[0]["IpPermissions"]


def test_alb_stack_is_idempotent_converges_and_tears_down(lab95):
    vpc_id, subnets = ecs.default_subnets(lab95)
    alb_sg = elbv2.ensure_alb_security_group(lab95, PATTERN, vpc_id)
    assert elbv2.ensure_alb_security_group(lab95, PATTERN, vpc_id) == alb_sg
    public = _task_group_rules(lab95, alb_sg)
    assert [(r["FromPort"], r["IpRanges"]) for r in public] == [(80, [{"CidrIp": "0.0.0.0/0"}])]

    task_sg = ecs.ensure_task_security_group(lab95, PATTERN, vpc_id)
    elbv2.allow_from_security_group(lab95, task_sg, alb_sg, 8080)
    elbv2.allow_from_security_group(lab95, task_sg, alb_sg, 8080)
    rules = _task_group_rules(lab95, task_sg)
    assert len(rules) == 1 and rules[0]["FromPort"] == 8080
    assert [p["GroupId"] for p in rules[0]["UserIdGroupPairs"]] == [alb_sg]

    balancer = elbv2.ensure_load_balancer(
        lab95, PATTERN, "web", subnets=subnets[:2], security_groups=[alb_sg], idle_timeout_s=30
    )
    again = elbv2.ensure_load_balancer(
        lab95, PATTERN, "web", subnets=subnets[:2], security_groups=[alb_sg]
    )
    assert again["LoadBalancerArn"] == balancer["LoadBalancerArn"]
    assert balancer["LoadBalancerName"] == "scd-pytest-95-web"
    assert (balancer["Scheme"], balancer["State"]["Code"]) == ("internet-facing", "active")
    client = lab95.client("elbv2")
    attributes = client.describe_load_balancer_attributes(
        LoadBalancerArn=balancer["LoadBalancerArn"]
    )["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "30"} in attributes
    tags = client.describe_tags(ResourceArns=[balancer["LoadBalancerArn"]])
    assert {"Key": "pattern", "Value": PATTERN} in tags["TagDescriptions"][0]["Tags"]

    group = elbv2.ensure_target_group(lab95, PATTERN, "web", vpc_id=vpc_id, port=8080)
    assert (group["TargetType"], group["Port"], group["HealthCheckPath"]) == ("ip", 8080, "/health")
    slower = elbv2.ensure_target_group(
        lab95, PATTERN, "web", vpc_id=vpc_id, port=8080, interval_s=30, timeout_s=10
    )
    assert slower["TargetGroupArn"] == group["TargetGroupArn"]
    described = client.describe_target_groups(TargetGroupArns=[group["TargetGroupArn"]])
    assert described["TargetGroups"][0]["HealthCheckIntervalSeconds"] == 30
    delay = client.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "30"} in delay["Attributes"]

    listener = elbv2.ensure_listener(lab95, balancer["LoadBalancerArn"], group["TargetGroupArn"])
    same = elbv2.ensure_listener(lab95, balancer["LoadBalancerArn"], group["TargetGroupArn"])
    assert same["ListenerArn"] == listener["ListenerArn"]
    other = elbv2.ensure_target_group(lab95, PATTERN, "blue", vpc_id=vpc_id, port=8080)
    moved = elbv2.ensure_listener(lab95, balancer["LoadBalancerArn"], other["TargetGroupArn"])
    assert moved["ListenerArn"] == listener["ListenerArn"]
    listeners = client.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])
    assert len(listeners["Listeners"]) == 1
    actions = listeners["Listeners"][0]["DefaultActions"]
    assert elbv2.forward_targets(actions) == [other["TargetGroupArn"]]
    assert elbv2.metric_dimensions(balancer, group)["LoadBalancer"].startswith(
        "app/scd-pytest-95-web/"
    )

    found = cleanup.find_resources(lab95, PATTERN)
    assert {r.kind for r in found} == ROUTING_KINDS
    assert len([r for r in found if r.kind == "target group"]) == 2
    rows = cleanup.teardown(lab95, pattern=PATTERN, quiet=True)
    assert {r["result"] for r in rows} == {"deleted"}
    assert cleanup.find_resources(lab95, PATTERN) == []
    with pytest.raises(client.exceptions.LoadBalancerNotFoundException):
        client.describe_load_balancers(Names=[balancer["LoadBalancerName"]])
    assert cleanup.teardown(lab95, pattern=PATTERN, quiet=True) == []


def _function(lab: helpers.Lab, folder: Path) -> dict:
    """A small zip function to sit behind the API (its code is never run here)."""
    folder.mkdir()
    (folder / "app.py").write_text("def handler(event, context):\n    return {'ok': True}\n")
    statements = iam.lambda_logging_statements(lab, lab.name(PATTERN, "items"))
    role = iam.ensure_role(lab, PATTERN, "items", service="lambda", statements=statements)
    return lambda_.ensure_function(
        lab, PATTERN, "items", role_arn=role["Arn"], zip_dir=folder, handler="app.handler"
    )


def _routes(lab: helpers.Lab, api_id: str) -> dict[str, dict]:
    """Route key -> the integration it targets."""
    client = lab.client("apigatewayv2")
    integrations = {i["IntegrationId"]: i for i in client.get_integrations(ApiId=api_id)["Items"]}
    return {
        route["RouteKey"]: integrations[route["Target"].removeprefix("integrations/")]
        for route in client.get_routes(ApiId=api_id)["Items"]
    }


def _statements(lab: helpers.Lab, function_name: str, api_id: str) -> list[dict]:
    """The function's resource policy statements that name this API."""
    client = lab.client("lambda")
    try:
        policy = json.loads(client.get_policy(FunctionName=function_name)["Policy"])
    except client.exceptions.ResourceNotFoundException:
        return []
    return [s for s in policy["Statement"] if api_id in json.dumps(s)]


def test_http_api_with_both_integrations_converges_and_tears_down(lab95, tmp_path):
    function = _function(lab95, tmp_path / "items")
    alb_url = "http://scd-pytest-95-web-1.us-east-1.elb.amazonaws.com"
    routes = {
        "ANY /{proxy+}": apigatewayv2.HttpProxy(alb_url),
        "GET /items/{id}": apigatewayv2.LambdaProxy(function["FunctionArn"], timeout_ms=10000),
    }
    api = apigatewayv2.ensure_http_api(lab95, PATTERN, "api", routes=routes)
    again = apigatewayv2.ensure_http_api(lab95, PATTERN, "api", routes=list(routes.items()))
    assert again["ApiId"] == api["ApiId"]
    assert api["Name"] == "scd-pytest-95-api" and api["ApiEndpoint"]
    wired = _routes(lab95, api["ApiId"])
    assert set(wired) == set(routes)
    assert (
        wired["ANY /{proxy+}"]["IntegrationType"],
        wired["ANY /{proxy+}"]["IntegrationUri"],
    ) == (
        "HTTP_PROXY",
        alb_url,
    )
    lambda_route = wired["GET /items/{id}"]
    assert lambda_route["IntegrationType"] == "AWS_PROXY"
    assert lambda_route["PayloadFormatVersion"] == "2.0"
    assert lambda_route["TimeoutInMillis"] == 10000
    client = lab95.client("apigatewayv2")
    assert len(client.get_integrations(ApiId=api["ApiId"])["Items"]) == 2  # not 4 after a re-run
    stages = client.get_stages(ApiId=api["ApiId"])["Items"]
    assert [(s["StageName"], s["AutoDeploy"]) for s in stages] == [("$default", True)]

    statements = _statements(lab95, function["FunctionName"], api["ApiId"])
    assert len(statements) == 1  # added once, not once per run
    source = json.dumps(statements[0])
    assert f":{api['ApiId']}/*/*" in source and "apigateway.amazonaws.com" in source

    # Changed routes: the Lambda route goes, the proxy now takes GET only; one integration left.
    narrowed = apigatewayv2.ensure_http_api(
        lab95, PATTERN, "api", routes={"GET /{proxy+}": apigatewayv2.HttpProxy(alb_url, "GET")}
    )
    assert narrowed["ApiId"] == api["ApiId"]
    wired = _routes(lab95, api["ApiId"])
    assert list(wired) == ["GET /{proxy+}"]
    assert wired["GET /{proxy+}"]["IntegrationMethod"] == "GET"
    assert len(client.get_integrations(ApiId=api["ApiId"])["Items"]) == 1
    assert _statements(lab95, function["FunctionName"], api["ApiId"]) == []  # nor may it call

    kinds = {r.kind for r in cleanup.find_resources(lab95, PATTERN)}
    assert {"http api", "lambda function", "iam role"} <= kinds
    rows = cleanup.teardown(lab95, pattern=PATTERN, quiet=True)
    assert ("http api", api["ApiId"]) in {(r["kind"], r["id"]) for r in rows}
    assert {r["result"] for r in rows} == {"deleted"}
    assert cleanup.find_resources(lab95, PATTERN) == []
    assert all(a["ApiId"] != api["ApiId"] for a in client.get_apis()["Items"])
