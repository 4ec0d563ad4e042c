"""HTTP API helpers without a cloud: route keys, targets, convergence on re-run, permissions."""

from __future__ import annotations

import dataclasses
import json

import pytest

from helpers import apigateway, cleanup
from helpers import apigatewayv2 as agw

ACCOUNT = "123456789012"  # the local cloud's fake account: never a real one in tests
FN = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:scd-unit-18-items"
OLD_FN = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:scd-unit-18-old"
ALB_URL = "http://scd-unit-18-web-1.eu-west-1.elb.amazonaws.com"


@pytest.mark.parametrize(
    "key",
    ["$default", "GET /", "ANY /{proxy+}", "GET /items/{id}", "POST /a/b-c/{x+}", "DELETE /v1.2"],
)
def test_valid_route_keys(key):
    assert agw.check_route_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "get /items",  # methods are upper case
        "FETCH /items",
        "GET items",  # paths start with /
        "GET /items/",  # no trailing slash
        "GET /a//b",
        "GET /{proxy+}/more",  # greedy only last
        "GET /items?id=1",
        "GET  /items",
        "/items",
        "$default ",
        "",
    ],
)
def test_invalid_route_keys_say_what_is_allowed(key):
    with pytest.raises(ValueError, match=r"not valid: use '\$default' or '<METHOD> /<path>'"):
        agw.check_route_key(key)


def test_route_table_refuses_duplicates_unknown_targets_and_nothing():
    target = agw.HttpProxy(ALB_URL)
    table = agw.route_table([("ANY /{proxy+}", target), ("$default", target)])
    assert list(table) == ["ANY /{proxy+}", "$default"]
    with pytest.raises(ValueError, match="appears twice"):
        agw.route_table([("GET /a", target), ("GET /a", agw.LambdaProxy(FN))])
    with pytest.raises(ValueError, match=r"route 'GET /a': use HttpProxy\(...\) or LambdaProxy"):
        agw.route_table({"GET /a": ALB_URL})
    with pytest.raises(ValueError, match="routes is empty"):
        agw.route_table({})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: agw.HttpProxy("scd-web-1.elb.amazonaws.com"), "http:// or https:// URL"),
        (lambda: agw.HttpProxy(ALB_URL, method="get"), "method must be one of"),
        (lambda: agw.HttpProxy(ALB_URL, timeout_ms=30001), "between 50 and 30000 ms"),
        (lambda: agw.LambdaProxy("scd-unit-18-items"), "function_arn must be a Lambda function"),
        (lambda: agw.LambdaProxy(FN, timeout_ms=10), "between 50 and 30000 ms"),
    ],
)
def test_targets_are_checked_when_made(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_existing_integrations_are_recognised_as_the_targets_they_implement():
    for target in (agw.HttpProxy(ALB_URL, "GET", 5000), agw.LambdaProxy(f"{FN}:live")):
        described = {"IntegrationId": "abc", **agw.integration_request(target)}
        assert agw.as_target(described) == target
    vpc_link = {
        **agw.integration_request(agw.HttpProxy(ALB_URL)),
        "ConnectionType": "VPC_LINK",
    }
    assert agw.as_target(vpc_link) is None
    old_payload = {**agw.integration_request(agw.LambdaProxy(FN)), "PayloadFormatVersion": "1.0"}
    assert agw.as_target(old_payload) is None


def test_rerun_with_changed_routes_converges_without_recreating(offline_lab, stubber):
    """Existing API (on page 2): keep the ALB integration, repoint, add and drop routes."""
    api, fn = stubber("apigatewayv2"), stubber("lambda")
    api_id = "a1b2c3"
    alb = {"IntegrationId": "int-alb", **agw.integration_request(agw.HttpProxy(ALB_URL))}
    old = {"IntegrationId": "int-old", **agw.integration_request(agw.LambdaProxy(OLD_FN))}
    api.add_response("get_apis", {"Items": [], "NextToken": "t1"}, {})
    found = {
        "ApiId": api_id,
        "Name": "scd-unit-18-api",
        "ProtocolType": "HTTP",
        "RouteSelectionExpression": "$request.method $request.path",
    }
    api.add_response("get_apis", {"Items": [found]}, {"NextToken": "t1"})
    api.add_response("get_integrations", {"Items": [alb, old]}, {"ApiId": api_id})
    new_request = agw.integration_request(agw.LambdaProxy(FN))
    api.add_response(
        "create_integration", {"IntegrationId": "int-new"}, {"ApiId": api_id, **new_request}
    )
    routes = [
        {"RouteId": "r1", "RouteKey": "ANY /{proxy+}", "Target": "integrations/int-old"},
        {"RouteId": "r2", "RouteKey": "GET /old", "Target": "integrations/int-alb"},
    ]
    api.add_response("get_routes", {"Items": routes}, {"ApiId": api_id})
    api.add_response(
        "update_route",
        {},
        {"ApiId": api_id, "RouteId": "r1", "Target": "integrations/int-alb"},
    )
    api.add_response(
        "create_route",
        {},
        {"ApiId": api_id, "RouteKey": "GET /items/{id}", "Target": "integrations/int-new"},
    )
    api.add_response("delete_route", {}, {"ApiId": api_id, "RouteId": "r2"})
    api.add_response("delete_integration", {}, {"ApiId": api_id, "IntegrationId": "int-old"})
    api.add_response(
        "get_stages", {"Items": [{"StageName": "$default", "AutoDeploy": True}]}, {"ApiId": api_id}
    )
    fn.add_client_error(
        "get_policy", "ResourceNotFoundException", expected_params={"FunctionName": FN}
    )
    fn.add_response(
        "add_permission",
        {"Statement": "{}"},
        {
            "FunctionName": FN,
            "StatementId": f"course-apigateway-{api_id}",
            "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": f"arn:aws:execute-api:eu-west-1:{ACCOUNT}:{api_id}/*/*",
        },
    )
    fn.add_response(
        "remove_permission",
        {},
        {"FunctionName": OLD_FN, "StatementId": f"course-apigateway-{api_id}"},
    )
    api.add_response(
        "get_api",
        {**found, "ApiEndpoint": f"https://{api_id}.execute-api.eu-west-1.amazonaws.com"},
        {"ApiId": api_id},
    )
    result = agw.ensure_http_api(
        offline_lab,
        "18",
        "api",
        routes={"ANY /{proxy+}": agw.HttpProxy(ALB_URL), "GET /items/{id}": agw.LambdaProxy(FN)},
    )
    assert result["ApiEndpoint"].startswith(f"https://{api_id}.")
    assert "ResponseMetadata" not in result
    api.assert_no_pending_responses()
    fn.assert_no_pending_responses()
    assert offline_lab.ledger.entries() == []  # nothing was created at the API level


def test_new_api_gets_tags_and_an_auto_deployed_default_stage(offline_lab, stubber):
    api = stubber("apigatewayv2")
    tags = {"course": "serverless-containers-databases", "pattern": "18", "run_id": "unit"}
    api.add_response("get_apis", {"Items": []}, {})
    api.add_response(
        "create_api",
        {"ApiId": "new1", "Name": "scd-unit-18-api"},
        {
            "Name": "scd-unit-18-api",
            "ProtocolType": "HTTP",
            "Description": "Course pattern 18: api",
            "Tags": tags,
        },
    )
    api.add_response("get_integrations", {"Items": []}, {"ApiId": "new1"})
    api.add_response("create_integration", {"IntegrationId": "i1"})
    api.add_response("get_routes", {"Items": []}, {"ApiId": "new1"})
    api.add_response(
        "create_route", {}, {"ApiId": "new1", "RouteKey": "$default", "Target": "integrations/i1"}
    )
    api.add_response("get_stages", {"Items": []}, {"ApiId": "new1"})
    api.add_response(
        "create_stage",
        {},
        {"ApiId": "new1", "StageName": "$default", "AutoDeploy": True, "Tags": tags},
    )
    api.add_response("get_api", {"ApiId": "new1"}, {"ApiId": "new1"})
    agw.ensure_http_api(offline_lab, "18", "api", routes={"$default": agw.HttpProxy(ALB_URL)})
    api.assert_no_pending_responses()
    assert [(e["kind"], e["id"]) for e in offline_lab.ledger.entries()] == [("http api", "new1")]


def test_invoke_permission_is_added_once_and_only_a_real_conflict_raises(offline_lab, stubber):
    fn = stubber("lambda")
    sid = agw.statement_id_for("a1")
    policy = json.dumps({"Statement": [{"Sid": sid}]})
    # Already there: no add_permission at all.
    fn.add_response("get_policy", {"Policy": policy})
    agw.allow_invoke(offline_lab, FN, "a1")
    # Added concurrently: the conflict is fine because the statement is there afterwards.
    fn.add_response("get_policy", {"Policy": json.dumps({"Statement": []})})
    fn.add_client_error("add_permission", "ResourceConflictException")
    fn.add_response("get_policy", {"Policy": policy})
    agw.allow_invoke(offline_lab, FN, "a1")
    # "An update is in progress": the statement is still missing, so the error surfaces.
    fn.add_response("get_policy", {"Policy": json.dumps({"Statement": []})})
    fn.add_client_error("add_permission", "ResourceConflictException")
    fn.add_response("get_policy", {"Policy": json.dumps({"Statement": []})})
    with pytest.raises(Exception, match="ResourceConflictException"):
        agw.allow_invoke(offline_lab, FN, "a1")
    fn.assert_no_pending_responses()


def test_teardown_deletes_the_api_and_its_permissions_and_goes_first(offline_lab, stubber):
    api, fn = stubber("apigatewayv2"), stubber("lambda")
    lambda_integration = agw.integration_request(agw.LambdaProxy(FN))
    http_integration = agw.integration_request(agw.HttpProxy(ALB_URL))
    api.add_response(
        "get_integrations", {"Items": [lambda_integration, http_integration]}, {"ApiId": "a1"}
    )
    api.add_response("delete_api", {}, {"ApiId": "a1"})
    fn.add_client_error(
        "remove_permission",
        "ResourceNotFoundException",  # the function went first: nothing to remove
        expected_params={"FunctionName": FN, "StatementId": "course-apigateway-a1"},
    )
    agw._delete(offline_lab, cleanup.Resource("http api", "a1", "18", "unit", {"name": "x"}))
    api.assert_no_pending_responses()
    fn.assert_no_pending_responses()
    order = [kind.name for kind in cleanup.teardown_order(cleanup.declared_kinds().values())]
    assert order.index("http api") < order.index("load balancer")
    assert order.index("http api") < order.index("lambda function")


# --- lab.url_for: resolvers declared by the modules that create APIs and load balancers ------


def test_url_for_finds_the_declared_resolver_by_the_resources_fields(offline_lab):
    on_aws = dataclasses.replace(offline_lab, backend="aws")
    api = {"ApiId": "a1", "ApiEndpoint": "https://a1.execute-api.eu-west-1.amazonaws.com"}
    assert on_aws.url_for(api) == api["ApiEndpoint"]
    assert on_aws.url_for(api, "$default") == api["ApiEndpoint"]
    assert on_aws.url_for(api, "v1") == api["ApiEndpoint"] + "/v1"
    rest = {"id": "r1", "name": "items", "rootResourceId": "x"}
    assert on_aws.url_for(rest, "prod") == "https://r1.execute-api.eu-west-1.amazonaws.com/prod"
    with pytest.raises(ValueError, match="needs its stage"):
        on_aws.url_for(rest)
    balancer = {"LoadBalancerArn": "arn:x", "DNSName": "web-1.eu-west-1.elb.amazonaws.com"}
    assert on_aws.url_for(balancer) == "http://web-1.eu-west-1.elb.amazonaws.com"
    with pytest.raises(ValueError, match="takes a load balancer or API"):
        offline_lab.url_for({"TableName": "t"})


def test_url_for_a_local_rest_api_is_its_listener_plus_the_stage(offline_lab, monkeypatch):
    served = {"apigateway": {"restapis": {"r1": "http://127.0.0.1:4321"}}}
    monkeypatch.setattr(apigateway, "local_endpoints", lambda lab: served)  # REST APIs' module
    rest = {"id": "r1", "name": "items", "rootResourceId": "x"}
    assert offline_lab.url_for(rest, "prod") == "http://127.0.0.1:4321/prod"
    with pytest.raises(ValueError, match="needs its stage"):
        offline_lab.url_for(rest)
    with pytest.raises(LookupError, match="not served by the local cloud"):
        offline_lab.url_for({**rest, "id": "r2"}, "prod")
