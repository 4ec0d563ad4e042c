"""REST API helpers on the live local cloud: resources, methods, scoped permissions, deployments.

`ensure_rest_api` is checked through the traffic it enables: each route reaches the function
with its resource and path parameters, a route dropped on a re-run answers 403 once the new
deployment is out, and every permission names one method and path of this API only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers
from helpers import apigateway, cleanup, iam, lambda_, web

PATTERN = "94"  # used by no notebook, so a failed teardown here never hides a notebook's
ECHO = """import json


def handler(event, context):
    body = {"route": f"{event['httpMethod']} {event['resource']}",
            "path": event["pathParameters"]}
    return {"statusCode": 200, "body": json.dumps(body)}
"""


@pytest.fixture
def lab94(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-94 resources are torn down after the test, even when it fails."""
    cleanup.teardown(lab, pattern=PATTERN, quiet=True)
    yield lab
    cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def _echo_function(lab: helpers.Lab, folder: Path) -> dict:
    folder.mkdir()
    (folder / "app.py").write_text(ECHO)
    statements = iam.lambda_logging_statements(lab, lab.name(PATTERN, "echo"))
    role = iam.ensure_role(lab, PATTERN, "echo", service="lambda", statements=statements)
    return lambda_.ensure_function(
        lab, PATTERN, "echo", role_arn=role["Arn"], zip_dir=folder, handler="app.handler"
    )


def _source_arns(lab: helpers.Lab, function_name: str) -> set[str]:
    policy = lab.client("lambda").get_policy(FunctionName=function_name)["Policy"]
    return {s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in json.loads(policy)["Statement"]}


def test_rest_api_routes_permissions_and_deployments(lab94: helpers.Lab, tmp_path: Path) -> None:
    function = _echo_function(lab94, tmp_path / "echo")
    arn = function["FunctionArn"]
    routes = {
        "GET /items": arn,
        "POST /items": arn,
        "GET /items/{item_id}": arn,
        "DELETE /items/{item_id}": arn,
    }
    api = apigateway.ensure_rest_api(lab94, PATTERN, "items", routes=routes)
    assert api["name"] == "scd-pytest-94-items"
    base = lab94.url_for(api, "prod")
    apigateway.wait_until_deployed(lab94, f"{base}/items")

    one = web.request("GET", f"{base}/items/abc")
    assert one.status == 200
    assert one.body == {"route": "GET /items/{item_id}", "path": {"item_id": "abc"}}
    assert web.request("POST", f"{base}/items", {}).body["route"] == "POST /items"
    undefined = web.request("PUT", f"{base}/items/abc")
    assert (undefined.status, undefined.body) == (403, {"message": "Missing Authentication Token"})

    prefix = f"arn:aws:execute-api:{lab94.region}:{lab94.account_id}:{api['id']}/*"
    assert _source_arns(lab94, function["FunctionName"]) == {
        f"{prefix}/GET/items",
        f"{prefix}/POST/items",
        f"{prefix}/GET/items/*",
        f"{prefix}/DELETE/items/*",
    }
    deployments = lab94.client("apigateway").get_deployments(restApiId=api["id"])["items"]
    again = apigateway.ensure_rest_api(lab94, PATTERN, "items", routes=routes)
    assert again["id"] == api["id"]
    after = lab94.client("apigateway").get_deployments(restApiId=api["id"])["items"]
    assert len(after) == len(deployments) == 1  # nothing changed: no new deployment

    narrowed = {key: value for key, value in routes.items() if not key.startswith("DELETE")}
    apigateway.ensure_rest_api(lab94, PATTERN, "items", routes=narrowed)
    methods = {(r["method"], r["resource"]) for r in apigateway.routes_frame(lab94, api["id"])}
    assert ("DELETE", "/items/{item_id}") not in methods and len(methods) == 3
    gone = web.request("DELETE", f"{base}/items/abc")
    assert gone.status == 403  # the new deployment no longer has the method

    found = cleanup.find_resources(lab94, PATTERN)
    assert "rest api" in {r.kind for r in found}
    cleanup.teardown(lab94, pattern=PATTERN, quiet=True)
    assert cleanup.find_resources(lab94, PATTERN) == []
    with pytest.raises(lab94.client("apigateway").exceptions.NotFoundException):
        lab94.client("apigateway").get_rest_api(restApiId=api["id"])


def test_route_tables_are_checked_before_any_call() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:scd-dev-24-customers-api"
    table = apigateway.route_table({"GET /customers/{customer_id}": arn})
    assert [(r.method, r.path) for r in table] == [("GET", "/customers/{customer_id}")]
    for bad in ("FETCH /items", "GET items", "GET /items/{a+}/b", "GET /it ems"):
        with pytest.raises(ValueError, match="route"):
            apigateway.route_table({bad: arn})
    with pytest.raises(ValueError, match="function ARN"):
        apigateway.route_table({"GET /items": "customers-api"})
    with pytest.raises(ValueError, match="empty"):
        apigateway.route_table({})
