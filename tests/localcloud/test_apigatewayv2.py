"""The local HTTP API data plane against a live local cloud: routing, Lambda, HTTP backends.

One API is built for the module: Lambda routes (payload 2.0 and 1.0), an HTTP_PROXY route to
an echo server started here, a `$default` route, a `$default` stage and a named `prod` stage.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import socket
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from live_fixtures import ZipFunctions, raw_request
from polling import wait_until

import helpers

HANDLERS = textwrap.dedent(
    """
    import json

    def echo(event, context):
        return {"statusCode": 200, "headers": {"X-From": "lambda"},
                "cookies": ["flavour=oat"], "body": json.dumps(event)}

    def fail(event, context):
        raise RuntimeError("asked to fail")

    def plain(event, context):
        return {"hello": "world"}

    def malformed(event, context):
        return {"statusCode": "teapot"}
    """
)


@pytest.fixture(scope="module")
def setup(
    module_lab: helpers.Lab, zip_functions: ZipFunctions, echo_backend: str
) -> Iterator[dict[str, Any]]:
    """Functions, an API with Lambda / HTTP routes and two stages; deleted at the end."""
    lab, backend = module_lab, echo_backend
    apigw = lab.client("apigatewayv2")
    functions = {
        handler: zip_functions.create({"handlers.py": HANDLERS}, f"handlers.{handler}", Timeout=10)[
            "FunctionArn"
        ]
        for handler in ("echo", "fail", "plain", "malformed")
    }
    api = apigw.create_api(Name=f"pytest-apigw-{uuid.uuid4().hex[:6]}", ProtocolType="HTTP")
    api_id = api["ApiId"]

    def integration(**kwargs: Any) -> str:
        return "integrations/" + apigw.create_integration(ApiId=api_id, **kwargs)["IntegrationId"]

    def lambda_target(name: str, version: str = "2.0") -> str:
        return integration(
            IntegrationType="AWS_PROXY",
            IntegrationUri=functions[name],
            PayloadFormatVersion=version,
        )

    echo = lambda_target("echo")
    invoke_uri = (
        f"arn:aws:apigateway:{lab.region}:lambda:path/2015-03-31/functions/"
        f"{functions['echo']}/invocations"
    )
    routes = {
        "GET /items/{id}": echo,
        "POST /items": integration(
            IntegrationType="AWS_PROXY", IntegrationUri=invoke_uri, PayloadFormatVersion="2.0"
        ),
        "GET /fail": lambda_target("fail"),
        "GET /plain": lambda_target("plain"),
        "GET /malformed": lambda_target("malformed"),
        "GET /v1/{id}": lambda_target("echo", "1.0"),
        "ANY /backend/{proxy+}": integration(
            IntegrationType="HTTP_PROXY",
            IntegrationUri=f"{backend}/echo/{{proxy}}",
            IntegrationMethod="ANY",
        ),
        "GET /slow": integration(
            IntegrationType="HTTP_PROXY",
            IntegrationUri=f"{backend}/sleep",
            IntegrationMethod="GET",
            TimeoutInMillis=300,
        ),
        "$default": integration(
            IntegrationType="HTTP_PROXY", IntegrationUri=backend, IntegrationMethod="ANY"
        ),
    }
    for key, target in routes.items():
        apigw.create_route(ApiId=api_id, RouteKey=key, Target=target)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    apigw.create_stage(ApiId=api_id, StageName="prod", StageVariables={"colour": "teal"})
    api = apigw.get_api(ApiId=api_id)
    yield {"lab": lab, "api": api, "base": lab.url_for(api), "functions": functions}
    apigw.delete_api(ApiId=api_id)


def _event(setup: dict[str, Any], path: str, **kwargs: Any) -> tuple[dict[str, str], dict]:
    status, headers, body, _ = raw_request("GET", setup["base"] + path, **kwargs)
    assert status == 200, body
    return headers, json.loads(body)


def test_endpoints_give_a_local_url_per_api(setup):
    lab, api = setup["lab"], setup["api"]
    base = setup["base"]
    assert base.startswith("http://127.0.0.1:")
    found = helpers.lab.local_endpoints(lab)["apigatewayv2"]["apis"]
    assert found[api["ApiId"]] == base
    assert lab.url_for(api, "prod") == f"{base}/prod"
    assert lab.url_for(api, "$default") == base


def test_path_parameter_route_invokes_lambda_with_a_payload_2_event(setup):
    headers, event = _event(
        setup, "/items/a%20b?tag=x&tag=y&single=1", headers={"X-Custom-Header": "Value"}
    )
    assert headers["x-from"] == "lambda" and headers["set-cookie"] == "flavour=oat"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/a%20b"
    assert event["rawQueryString"] == "tag=x&tag=y&single=1"
    assert event["pathParameters"] == {"id": "a b"}
    assert event["queryStringParameters"] == {"tag": "x,y", "single": "1"}
    assert event["headers"]["x-custom-header"] == "Value"
    assert all(name == name.lower() for name in event["headers"])
    context = event["requestContext"]
    assert context["http"]["method"] == "GET" and context["http"]["path"] == "/items/a%20b"
    assert context["stage"] == "$default" and context["apiId"] == setup["api"]["ApiId"]
    assert context["requestId"] == headers["apigw-requestid"]
    assert "body" not in event and event["isBase64Encoded"] is False


def test_named_stage_prefix_selects_the_stage_and_stays_in_raw_path(setup):
    url = setup["lab"].url_for(setup["api"], "prod")
    status, _, body, _ = raw_request("GET", f"{url}/items/7")
    event = json.loads(body)
    assert status == 200
    assert event["requestContext"]["stage"] == "prod"
    assert event["rawPath"] == "/prod/items/7" and event["pathParameters"] == {"id": "7"}
    assert event["stageVariables"] == {"colour": "teal"}

    # UpdateStage changes what it is given and keeps the rest; requests see it at once.
    apigw, api_id = setup["lab"].client("apigatewayv2"), setup["api"]["ApiId"]
    try:
        updated = apigw.update_stage(
            ApiId=api_id,
            StageName="prod",
            StageVariables={"colour": "amber"},
            Description="now amber",
        )
        assert (updated["StageVariables"], updated["Description"]) == (
            {"colour": "amber"},
            "now amber",
        )
        assert apigw.get_stage(ApiId=api_id, StageName="prod")["Description"] == "now amber"
        event = json.loads(raw_request("GET", f"{url}/items/7")[2])
        assert event["stageVariables"] == {"colour": "amber"}
        with pytest.raises(ClientError) as missing:
            apigw.update_stage(ApiId=api_id, StageName="nope", Description="x")
        assert missing.value.response["Error"]["Code"] == "NotFoundException"
    finally:
        apigw.update_stage(ApiId=api_id, StageName="prod", StageVariables={"colour": "teal"})


def test_post_body_passes_through_and_binary_bodies_are_base64(setup):
    text = json.dumps({"name": "Ada"}).encode()
    status, _, body, _ = raw_request(
        "POST", setup["base"] + "/items", text, {"Content-Type": "application/json"}
    )
    event = json.loads(body)
    assert status == 200 and event["routeKey"] == "POST /items"
    assert event["body"] == text.decode() and event["isBase64Encoded"] is False
    blob = bytes(range(256))
    status, _, body, _ = raw_request(
        "POST", setup["base"] + "/items", blob, {"Content-Type": "application/octet-stream"}
    )
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == blob


def test_payload_1_0_event(setup):
    _, event = _event(setup, "/v1/5?a=1&a=2")
    assert event["version"] == "1.0" and event["httpMethod"] == "GET"
    assert event["resource"] == "/v1/{id}" and event["pathParameters"] == {"id": "5"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}


def test_function_error_malformed_result_and_inferred_json(setup):
    status, headers, body, _ = raw_request("GET", setup["base"] + "/fail")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert headers["content-type"] == "application/json" and headers["apigw-requestid"]
    status, _, body, _ = raw_request("GET", setup["base"] + "/malformed")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    status, headers, body, _ = raw_request("GET", setup["base"] + "/plain")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"hello": "world"}


def test_http_proxy_greedy_route_forwards_method_path_query_headers_and_body(setup, echo_backend):
    status, headers, body, _ = raw_request(
        "PUT",
        setup["base"] + "/backend/a/b%20c?x=1&x=2",
        b"payload",
        {"Content-Type": "text/plain", "X-Client": "yes"},
    )
    seen = json.loads(body)
    assert status == 207 and headers["x-backend"] == "echo" and headers["apigw-requestid"]
    assert seen["method"] == "PUT" and seen["path"] == "/echo/a/b%20c"
    assert seen["query"] == "x=1&x=2" and seen["body"] == "payload"
    assert seen["headers"]["x-client"] == "yes"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["host"] == urlsplit(echo_backend).netloc  # the backend's own Host


def test_default_route_sends_the_full_path_to_the_backend(setup):
    status, _, body, _ = raw_request("DELETE", setup["base"] + "/store/checkout?now=1")
    seen = json.loads(body)
    assert status == 207 and seen["method"] == "DELETE"
    assert (seen["path"], seen["query"]) == ("/store/checkout", "now=1")
    prod = setup["lab"].url_for(setup["api"], "prod")
    seen = json.loads(raw_request("GET", f"{prod}/store")[2])
    assert seen["path"] == "/prod/store"  # a named stage's prefix is part of the full path


def test_unknown_route_and_unknown_stage_are_404_not_found(setup):
    lab = setup["lab"]
    apigw = lab.client("apigatewayv2")
    api = apigw.create_api(Name=f"pytest-apigw-404-{uuid.uuid4().hex[:6]}", ProtocolType="HTTP")
    try:
        target = apigw.create_integration(
            ApiId=api["ApiId"],
            IntegrationType="AWS_PROXY",
            IntegrationUri=setup["functions"]["echo"],
            PayloadFormatVersion="2.0",
        )["IntegrationId"]
        apigw.create_route(
            ApiId=api["ApiId"], RouteKey="GET /items/{id}", Target=f"integrations/{target}"
        )
        apigw.create_stage(ApiId=api["ApiId"], StageName="dev")
        base = lab.url_for(api)
        for path in ("/items/1", "/dev/nothing", "/dev/items/1/extra"):
            status, headers, body, _ = raw_request("GET", base + path)
            assert (status, body) == (404, b'{"message":"Not Found"}'), path
            assert headers["apigw-requestid"]
        assert raw_request("GET", base + "/dev/items/1")[0] == 200
        assert raw_request("POST", base + "/dev/items/1")[0] == 404
        # A route created later is served at once.
        apigw.create_route(
            ApiId=api["ApiId"], RouteKey="ANY /later", Target=f"integrations/{target}"
        )
        assert raw_request("PATCH", base + "/dev/later")[0] == 200
        # A route key or a stage name in use: 409, and still one of each.
        for call in (
            lambda: apigw.create_route(ApiId=api["ApiId"], RouteKey="ANY /later"),
            lambda: apigw.create_stage(ApiId=api["ApiId"], StageName="dev"),
        ):
            with pytest.raises(ClientError) as refused:
                call()
            assert refused.value.response["Error"]["Code"] == "ConflictException"
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
        keys = [r["RouteKey"] for r in apigw.get_routes(ApiId=api["ApiId"])["Items"]]
        assert sorted(keys) == ["ANY /later", "GET /items/{id}"]
        assert [s["StageName"] for s in apigw.get_stages(ApiId=api["ApiId"])["Items"]] == ["dev"]
    finally:
        apigw.delete_api(ApiId=api["ApiId"])
    with pytest.raises(OSError):  # the listener is gone with its API
        raw_request("GET", base + "/dev/items/1")
    with pytest.raises(ClientError) as gone:
        apigw.delete_api(ApiId=api["ApiId"])
    assert gone.value.response["Error"]["Code"] == "NotFoundException"


def test_unreachable_backend_is_503(setup):
    lab = setup["lab"]
    apigw = lab.client("apigatewayv2")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    api = apigw.create_api(
        Name=f"pytest-apigw-down-{uuid.uuid4().hex[:6]}",
        ProtocolType="HTTP",
        Target=f"http://127.0.0.1:{closed}",
    )
    try:
        status, _, body, _ = raw_request("GET", lab.url_for(api) + "/anything")
        assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
    finally:
        apigw.delete_api(ApiId=api["ApiId"])


def test_integration_timeout_is_503(setup):
    status, headers, body, _ = raw_request("GET", setup["base"] + "/slow")
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
    assert headers["apigw-requestid"]


def test_quick_create_with_a_lambda_target(setup):
    lab = setup["lab"]
    apigw = lab.client("apigatewayv2")
    api = apigw.create_api(
        Name=f"pytest-apigw-quick-{uuid.uuid4().hex[:6]}",
        ProtocolType="HTTP",
        Target=setup["functions"]["echo"],
    )
    try:
        assert [r["RouteKey"] for r in apigw.get_routes(ApiId=api["ApiId"])["Items"]] == [
            "$default"
        ]
        status, _, body, _ = raw_request("GET", lab.url_for(api) + "/any/path")
        event = json.loads(body)
        assert status == 200 and event["routeKey"] == "$default"
        assert event["rawPath"] == "/any/path" and "pathParameters" not in event
        deployment = apigw.create_deployment(ApiId=api["ApiId"], Description="first")
        assert deployment["DeploymentStatus"] == "DEPLOYED"
        listed = apigw.get_deployments(ApiId=api["ApiId"])["Items"]
        assert [d["DeploymentId"] for d in listed] == [deployment["DeploymentId"]]
    finally:
        apigw.delete_api(ApiId=api["ApiId"])


def test_keep_alive_connection_serves_several_requests(setup):
    parts = urlsplit(setup["base"])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        for n in range(3):
            connection.request("GET", f"/backend/n/{n}")
            response = connection.getresponse()
            assert response.status == 207 and not response.will_close
            assert json.loads(response.read())["path"] == f"/echo/n/{n}"
    finally:
        connection.close()


def test_requests_are_counted_in_cloudwatch(setup):
    lab, api_id = setup["lab"], setup["api"]["ApiId"]
    for _ in range(2):
        raw_request("GET", setup["lab"].url_for(setup["api"], "prod") + "/fail")
    cloudwatch = lab.client("cloudwatch")
    now = dt.datetime.now(dt.UTC)

    def total(metric: str) -> float:
        stats = cloudwatch.get_metric_statistics(
            Namespace="AWS/ApiGateway",
            MetricName=metric,
            Statistics=["Sum"],
            Period=3600,
            Dimensions=[{"Name": "ApiId", "Value": api_id}, {"Name": "Stage", "Value": "prod"}],
            StartTime=now - dt.timedelta(hours=1),
            EndTime=now + dt.timedelta(hours=1),
        )
        return sum(p["Sum"] for p in stats["Datapoints"])

    # A background thread writes the metrics.
    wait_until(lambda: total("5xx") >= 2, what="two 5xx counted", timeout=10, interval=0.1)
    assert total("Count") >= total("5xx")
    latency = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApiGateway",
        MetricName="IntegrationLatency",
        Statistics=["SampleCount"],
        Period=3600,
        Dimensions=[{"Name": "ApiId", "Value": api_id}, {"Name": "Stage", "Value": "prod"}],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(hours=1),
    )
    assert latency["Datapoints"][0]["Unit"] == "Milliseconds"
