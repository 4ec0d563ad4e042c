"""The local REST API (API Gateway v1) data plane against a live local cloud.

One API is built for the module: Lambda proxy methods on a resource tree with a path
parameter, a literal sibling, a greedy `{proxy+}` with ANY and the root, deployed to `prod`
with a stage variable. Functions echo their event, shape their response from the request
body, fail, sleep, are throttled or lack the permission API Gateway needs.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import textwrap
import time
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
    import json, time

    def echo(event, context):
        return {"statusCode": 200, "headers": {"X-From": "lambda"}, "body": json.dumps(event)}

    def shape(event, context):
        return json.loads(event["body"])  # the client sends the proxy response it wants

    def fail(event, context):
        raise RuntimeError("asked to fail")

    def slow(event, context):
        time.sleep(2)
        return {"statusCode": 200, "body": "late"}
    """
)
MISSING = {"message": "Missing Authentication Token"}
INTERNAL = {"message": "Internal server error"}


class RestApi:
    """Builds resources and Lambda proxy methods on one REST API."""

    def __init__(self, lab: helpers.Lab, name: str) -> None:
        self.lab = lab
        self.client = lab.client("apigateway")
        self.api = self.client.create_rest_api(
            name=name, endpointConfiguration={"types": ["REGIONAL"]}
        )
        self.id = self.api["id"]
        self.ids = {"/": self.api["rootResourceId"]}

    def resource(self, path: str) -> str:
        """The id of a resource path, creating it and its parents."""
        if path not in self.ids:
            parent, _, part = path.rpartition("/")
            created = self.client.create_resource(
                restApiId=self.id, parentId=self.resource(parent or "/"), pathPart=part
            )
            self.ids[path] = created["id"]
        return self.ids[path]

    def method(self, path: str, verb: str, function_arn: str, **integration: Any) -> None:
        """A method with an AWS_PROXY integration to the function."""
        resource_id = self.resource(path)
        self.client.put_method(
            restApiId=self.id, resourceId=resource_id, httpMethod=verb, authorizationType="NONE"
        )
        uri = (
            f"arn:aws:apigateway:{self.lab.region}:lambda:path/2015-03-31/functions/"
            f"{function_arn}/invocations"
        )
        self.client.put_integration(
            restApiId=self.id,
            resourceId=resource_id,
            httpMethod=verb,
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=uri,
            **integration,
        )

    def source_arn(self, rest: str) -> str:
        account = self.lab.client("sts").get_caller_identity()["Account"]
        return f"arn:aws:execute-api:{self.lab.region}:{account}:{self.id}/{rest}"


def _allow(lab: helpers.Lab, function_arn: str, source_arn: str) -> None:
    lab.client("lambda").add_permission(
        FunctionName=function_arn,
        StatementId=f"apigw-{uuid.uuid4().hex[:8]}",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=source_arn,
    )


@pytest.fixture(scope="module")
def setup(module_lab: helpers.Lab, zip_functions: ZipFunctions) -> Iterator[dict[str, Any]]:
    """Functions and one deployed REST API; deleted at the end."""
    lab = module_lab
    files = {"handlers.py": HANDLERS}
    arn = {
        name: zip_functions.create(files, f"handlers.{name}", Timeout=10)["FunctionArn"]
        for name in ("echo", "shape", "fail", "slow")
    }
    arn["denied"] = zip_functions.create(files, "handlers.echo")["FunctionArn"]
    arn["throttled"] = zip_functions.create(files, "handlers.echo")["FunctionArn"]
    lab.client("lambda").put_function_concurrency(
        FunctionName=arn["throttled"], ReservedConcurrentExecutions=0
    )
    api = RestApi(lab, f"pytest-rest-{uuid.uuid4().hex[:6]}")
    for path, verb in [
        ("/", "GET"),
        ("/items", "GET"),
        ("/items", "POST"),
        ("/items/{id}", "GET"),
        ("/items/special", "GET"),
        ("/files/{proxy+}", "ANY"),
    ]:
        api.method(path, verb, arn["echo"])
    api.method("/shape", "POST", arn["shape"])
    api.method("/fail", "GET", arn["fail"])
    api.method("/slow", "GET", arn["slow"], timeoutInMillis=300)
    api.method("/throttled", "GET", arn["throttled"])
    api.method("/denied", "GET", arn["denied"])
    for name in ("echo", "shape", "fail", "slow", "throttled"):
        _allow(lab, arn[name], api.source_arn("*/*/*"))
    # The denied function may be invoked by POST only: its GET method is not covered.
    _allow(lab, arn["denied"], api.source_arn("*/POST/denied"))
    api.client.create_deployment(restApiId=api.id, stageName="prod", variables={"colour": "teal"})
    rest_api = api.client.get_rest_api(restApiId=api.id)
    yield {"lab": lab, "api": api, "url": lab.url_for(rest_api, "prod"), "arn": arn}
    api.client.delete_rest_api(restApiId=api.id)


def _echo(setup: dict[str, Any], path: str, method: str = "GET", **kwargs: Any) -> dict:
    status, headers, body, _ = raw_request(method, setup["url"] + path, **kwargs)
    assert status == 200, body
    assert headers["x-from"] == "lambda"
    return json.loads(body)


def test_url_for_names_the_local_listener_and_the_stage(setup):
    lab, api = setup["lab"], setup["api"]
    base = helpers.lab.local_endpoints(lab)["apigateway"]["restapis"][api.id]
    assert base.startswith("http://127.0.0.1:")
    assert setup["url"] == f"{base}/prod"


def test_the_event_is_payload_1_0(setup):
    before = int(time.time() * 1000)
    status, headers, body, _ = raw_request(
        "GET", setup["url"] + "/items/42?tag=x&tag=y&single=1", headers={"X-Custom": "Value"}
    )
    assert status == 200
    event = json.loads(body)
    assert "version" not in event
    assert (event["resource"], event["path"], event["httpMethod"]) == (
        "/items/{id}",
        "/items/42",
        "GET",
    )
    assert event["headers"]["X-Custom"] == "Value"
    assert event["multiValueHeaders"]["X-Custom"] == ["Value"]
    assert event["queryStringParameters"] == {"tag": "y", "single": "1"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["x", "y"], "single": ["1"]}
    assert event["pathParameters"] == {"id": "42"}
    assert event["stageVariables"] == {"colour": "teal"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] == headers["x-amzn-requestid"]
    assert uuid.UUID(context["requestId"])
    assert (context["stage"], context["resourcePath"], context["httpMethod"]) == (
        "prod",
        "/items/{id}",
        "GET",
    )
    assert context["path"] == "/prod/items/42"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["apiId"] == setup["api"].id
    assert context["accountId"] == setup["arn"]["echo"].split(":")[4]
    assert context["protocol"] == "HTTP/1.1"
    assert before <= context["requestTimeEpoch"] <= int(time.time() * 1000)
    assert context["resourceId"] == setup["api"].ids["/items/{id}"]


def test_routing_literal_over_parameter_greedy_any_and_root(setup):
    assert _echo(setup, "/items/special")["resource"] == "/items/special"
    event = _echo(setup, "/items/a%20b")
    assert event["resource"] == "/items/{id}" and event["pathParameters"] == {"id": "a b"}
    event = _echo(setup, "/files/a/b/c.txt", "DELETE")
    assert (event["resource"], event["httpMethod"]) == ("/files/{proxy+}", "DELETE")
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert _echo(setup, "/")["resource"] == "/"
    assert _echo(setup, "/items/")["resource"] == "/items"  # a trailing slash is ignored
    event = _echo(setup, "/items", "POST", body=b'{"name":"Ada"}')
    assert event["httpMethod"] == "POST" and event["body"] == '{"name":"Ada"}'


def test_undefined_stage_resource_or_method_is_403_missing_authentication_token(setup):
    base = setup["url"].rsplit("/", 1)[0]
    for method, url in [
        ("GET", setup["url"] + "/nothing"),
        ("DELETE", setup["url"] + "/items"),  # the resource has no DELETE and no ANY
        ("GET", setup["url"] + "/files"),  # {proxy+} needs a segment of its own
        ("GET", base + "/dev/items"),  # no such stage
        ("GET", base + "/"),
    ]:
        status, headers, body, _ = raw_request(method, url)
        assert (status, json.loads(body)) == (403, MISSING), (method, url)
        assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
        assert headers["x-amzn-requestid"] and headers["content-type"] == "application/json"


def _shaped(setup: dict[str, Any], result: Any, **headers: str) -> tuple[int, dict, bytes, list]:
    """What the client gets when the function returns `result`."""
    return raw_request("POST", setup["url"] + "/shape", json.dumps(result).encode(), headers)


def test_response_mapping(setup):
    status, headers, body, raw = _shaped(
        setup,
        {
            "statusCode": "201",
            "headers": {"X-Solo": "one", "X-Both": "solo", "X-Flag": True},
            "multiValueHeaders": {"X-Both": ["m1", "m2"], "Set-Cookie": ["a=1", "b=2"]},
            "body": "created",
        },
    )
    assert (status, body) == (201, b"created")
    assert headers["x-solo"] == "one" and headers["x-flag"] == "true"
    assert headers["x-both"] == "m1, m2, solo"
    assert [v for k, v in raw if k.lower() == "set-cookie"] == ["a=1", "b=2"]
    assert headers["content-type"] == "application/json"  # the default
    status, headers, body, _ = _shaped(setup, {"body": "no status"})
    assert (status, body) == (200, b"no status")
    # Without binaryMediaTypes the body is passed on as the function wrote it.
    status, _, body, _ = _shaped(setup, {"body": "aGk=", "isBase64Encoded": True})
    assert (status, body) == (200, b"aGk=")
    status, headers, _, _ = _shaped(
        setup, {"statusCode": 204, "headers": {"Content-Type": "text/plain"}}
    )
    assert status == 204 and headers["content-type"] == "text/plain"


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 200, "body": "x", "extra": 1},
        {"statusCode": "teapot"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "multiValueHeaders": {"X-A": "not a list"}},
        "a bare string",
    ],
)
def test_malformed_proxy_response_is_502(setup, result):
    status, headers, body, _ = _shaped(setup, result)
    assert (status, json.loads(body)) == (502, INTERNAL)
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"


def test_function_error_is_502(setup):
    status, headers, body, _ = raw_request("GET", setup["url"] + "/fail")
    assert (status, json.loads(body)) == (502, INTERNAL)
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"


def test_integration_timeout_is_504(setup):
    status, _, body, _ = raw_request("GET", setup["url"] + "/slow")
    assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})


def test_throttled_function_is_500_as_lambda_refused_the_invoke(setup):
    # AWS does not pass Lambda's 429 on: "If the Lambda API rejects the invocation request,
    # API Gateway returns a 500" (Lambda developer guide, services-apigateway-errors).
    status, headers, body, _ = raw_request("GET", setup["url"] + "/throttled")
    assert (status, json.loads(body)) == (500, INTERNAL)
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"


def test_body_over_10_mb_is_413(setup):
    parts = urlsplit(setup["url"])
    head = (
        f"POST {parts.path}/items HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Length: {10 * 1024 * 1024 + 1}\r\n\r\n"
    )
    # The answer comes from the head alone; the client sends no more than a first chunk.
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as client:
        client.sendall(head.encode() + b"x" * 1024)
        response = http.client.HTTPResponse(client)
        response.begin()
        assert response.status == 413
        assert json.loads(response.read()) == {"message": "Request Too Long"}


def test_invoke_needs_a_permission_for_the_methods_source_arn(setup):
    lab, api = setup["lab"], setup["api"]
    # The function allows POST /denied only; without a matching statement: 500.
    status, headers, body, _ = raw_request("GET", setup["url"] + "/denied")
    assert (status, json.loads(body)) == (500, INTERNAL)
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"
    _allow(lab, setup["arn"]["denied"], api.source_arn("prod/GET/denied"))
    status, _, body, _ = raw_request("GET", setup["url"] + "/denied")  # no redeployment needed
    assert status == 200 and json.loads(body)["resource"] == "/denied"
    # A statement id in use is refused (409), and the policy keeps one statement of it.
    lam = lab.client("lambda")
    statement = {
        "FunctionName": setup["arn"]["denied"],
        "StatementId": "granted-twice",
        "Action": "lambda:InvokeFunction",
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": api.source_arn("prod/GET/denied"),
    }
    lam.add_permission(**statement)
    with pytest.raises(ClientError) as refused:
        lam.add_permission(**statement)
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ResourceConflictException",
        409,
    )
    assert error["Error"]["Message"].startswith("The statement id (granted-twice) provided")
    policy = json.loads(lam.get_policy(FunctionName=setup["arn"]["denied"])["Policy"])
    assert [s["Sid"] for s in policy["Statement"]].count("granted-twice") == 1


def test_only_what_was_deployed_is_served(setup):
    lab = setup["lab"]
    api = RestApi(lab, f"pytest-rest-deploy-{uuid.uuid4().hex[:6]}")
    echo = setup["arn"]["echo"]
    _allow(lab, echo, api.source_arn("*/*/*"))
    try:
        api.method("/first", "GET", echo)
        api.client.put_method_response(
            restApiId=api.id, resourceId=api.ids["/first"], httpMethod="GET", statusCode="200"
        )
        first = api.client.create_deployment(restApiId=api.id, stageName="prod")
        stages = api.client.get_stages(restApiId=api.id)["item"]
        assert [(s["stageName"], s["deploymentId"]) for s in stages] == [("prod", first["id"])]
        url = lab.url_for(api.client.get_rest_api(restApiId=api.id), "prod")
        assert raw_request("GET", url + "/first")[0] == 200
        api.method("/later", "GET", echo)
        assert raw_request("GET", url + "/later")[0] == 403  # created, not deployed
        api.client.create_deployment(restApiId=api.id, stageName="prod")
        status, _, body, _ = raw_request("GET", url + "/later")
        assert status == 200 and json.loads(body)["resource"] == "/later"
        # A stage on the first deployment keeps serving the tree frozen then.
        api.client.create_stage(restApiId=api.id, stageName="v1", deploymentId=first["id"])
        old = url.rsplit("/", 1)[0] + "/v1"
        assert raw_request("GET", old + "/first")[0] == 200
        assert raw_request("GET", old + "/later")[0] == 403
        # Pointing prod back at the first deployment (and a new stage variable) shows at once.
        api.client.update_stage(
            restApiId=api.id,
            stageName="prod",
            patchOperations=[
                {"op": "replace", "path": "/deploymentId", "value": first["id"]},
                {"op": "replace", "path": "/variables/colour", "value": "red"},
            ],
        )
        assert raw_request("GET", url + "/later")[0] == 403
        status, _, body, _ = raw_request("GET", url + "/first")
        assert status == 200 and json.loads(body)["stageVariables"] == {"colour": "red"}
    finally:
        api.client.delete_rest_api(restApiId=api.id)
    with pytest.raises(OSError):  # the listener is gone with its API
        raw_request("GET", url + "/first")


def test_http_proxy_integration_forwards_to_its_url(setup, echo_backend):
    lab = setup["lab"]
    api = RestApi(lab, f"pytest-rest-http-{uuid.uuid4().hex[:6]}")
    try:
        resource_id = api.resource("/backend/{proxy+}")
        api.client.put_method(
            restApiId=api.id, resourceId=resource_id, httpMethod="ANY", authorizationType="NONE"
        )
        api.client.put_integration(
            restApiId=api.id,
            resourceId=resource_id,
            httpMethod="ANY",
            type="HTTP_PROXY",
            integrationHttpMethod="ANY",
            uri=f"{echo_backend}/echo/{{proxy}}",
        )
        api.client.create_deployment(restApiId=api.id, stageName="prod")
        url = lab.url_for(api.client.get_rest_api(restApiId=api.id), "prod")
        status, _, body, _ = raw_request("PUT", url + "/backend/a/b%20c?x=1&x=2", b"payload")
        seen = json.loads(body)
        assert status == 207
        assert (seen["method"], seen["path"], seen["query"], seen["body"]) == (
            "PUT",
            "/echo/a/b%20c",
            "x=1&x=2",
            "payload",
        )
    finally:
        api.client.delete_rest_api(restApiId=api.id)


def test_an_imported_api_is_served_too(setup, echo_backend):
    integration = {
        "type": "HTTP_PROXY",
        "httpMethod": "GET",
        "uri": f"{echo_backend}/hi",
    }
    definition = {
        "openapi": "3.0.1",
        "info": {
            "title": f"pytest-rest-import-{uuid.uuid4().hex[:6]}",
            "version": "1",
            "description": "imported",
        },
        "paths": {"/hello": {"get": {"x-amazon-apigateway-integration": integration}}},
    }
    client = setup["api"].client
    api = client.import_rest_api(body=json.dumps(definition).encode())
    try:
        client.create_deployment(restApiId=api["id"], stageName="prod")
        status, _, body, _ = raw_request("GET", setup["lab"].url_for(api, "prod") + "/hello")
        assert status == 207 and json.loads(body)["path"] == "/hi"
    finally:
        client.delete_rest_api(restApiId=api["id"])


def test_control_plane_refusals_moto_lacks(setup):
    api, client = setup["api"], setup["api"].client
    with pytest.raises(ClientError, match="Method already exists") as raised:
        client.put_method(
            restApiId=api.id,
            resourceId=api.ids["/items"],
            httpMethod="GET",
            authorizationType="NONE",
        )
    assert raised.value.response["Error"]["Code"] == "ConflictException"
    api.resource("/{first}")  # not deployed: the served tree does not change
    for part in ("items", "{second}"):  # a sibling's name; a second variable part
        with pytest.raises(ClientError) as raised:
            client.create_resource(restApiId=api.id, parentId=api.ids["/"], pathPart=part)
        assert raised.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError, match="between 50 ms and 29000 ms"):
        client.put_integration(
            restApiId=api.id,
            resourceId=api.ids["/items"],
            httpMethod="GET",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri="arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/x/invocations",
            timeoutInMillis=10,
        )
    integration = client.get_integration(
        restApiId=api.id, resourceId=api.ids["/items"], httpMethod="GET"
    )
    assert integration["timeoutInMillis"] == 29000 and integration["type"] == "AWS_PROXY"
    with pytest.raises(ClientError) as raised:
        client.create_stage(restApiId=api.id, stageName="nowhere", deploymentId="missing1")
    assert raised.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as raised:
        client.delete_rest_api(restApiId="missing123")
    assert raised.value.response["Error"]["Code"] == "NotFoundException"


def test_requests_are_measured_by_api_name_and_stage(setup):
    lab, api = setup["lab"], setup["api"]
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    for path in ("/items", "/fail", "/nothing"):
        raw_request("GET", setup["url"] + path)
    cloudwatch = lab.client("cloudwatch")
    dimensions = [{"Name": "ApiName", "Value": api.api["name"]}, {"Name": "Stage", "Value": "prod"}]

    def stats(metric: str, statistic: str, dims: list[dict[str, str]]) -> list[dict]:
        return cloudwatch.get_metric_statistics(
            Namespace="AWS/ApiGateway",
            MetricName=metric,
            Dimensions=dims,
            Statistics=[statistic],
            Period=3600,
            StartTime=started,
            EndTime=started + dt.timedelta(hours=1),
        )["Datapoints"]

    def total(metric: str, dims: list[dict[str, str]] = dimensions) -> float:
        return sum(p["Sum"] for p in stats(metric, "Sum", dims))

    wait_until(lambda: total("4XXError") >= 1 and total("5XXError") >= 1, what="errors counted")
    assert total("Count") >= 3
    assert total("Count", dimensions[:1]) >= total("Count")  # ApiName alone covers all stages
    latency = stats("IntegrationLatency", "SampleCount", dimensions)
    assert latency and latency[0]["Unit"] == "Milliseconds"
    assert stats("Latency", "Maximum", dimensions)[0]["Unit"] == "Milliseconds"


def test_access_log_lines_go_to_the_stages_log_group(setup):
    lab, api = setup["lab"], setup["api"]
    logs = lab.client("logs")
    group = f"/pytest/rest-access-{uuid.uuid4().hex[:6]}"
    logs.create_log_group(logGroupName=group)
    line_format = json.dumps(
        {
            "requestId": "$context.requestId",
            "method": "$context.httpMethod",
            "resource": "$context.resourcePath",
            "status": "$context.status",
            "error": "$context.error.message",
            "ip": "$context.identity.sourceIp",
            "unknown": "$context.authorizer.principalId",
        }
    )
    account = setup["arn"]["echo"].split(":")[4]
    settings = [
        {
            "op": "replace",
            "path": "/accessLogSettings/destinationArn",
            "value": f"arn:aws:logs:{lab.region}:{account}:log-group:{group}",
        },
        {"op": "replace", "path": "/accessLogSettings/format", "value": line_format},
    ]
    api.client.update_stage(restApiId=api.id, stageName="prod", patchOperations=settings)
    try:
        ids = [
            raw_request("GET", setup["url"] + path)[1]["x-amzn-requestid"]
            for path in ("/items", "/nope")
        ]

        def lines() -> list[dict]:
            found = logs.filter_log_events(logGroupName=group)["events"]
            return [json.loads(e["message"]) for e in found] if len(found) >= 2 else []

        served, refused = sorted(
            wait_until(lines, what="two access log lines"),
            key=lambda line: ids.index(line["requestId"]),
        )
        assert served == {
            "requestId": ids[0],
            "method": "GET",
            "resource": "/items",
            "status": "200",
            "error": "-",
            "ip": "127.0.0.1",
            "unknown": "-",
        }
        assert (refused["status"], refused["resource"]) == ("403", "-")
        assert refused["error"] == "Missing Authentication Token"
    finally:
        remove = [{"op": "remove", "path": "/accessLogSettings"}]
        api.client.update_stage(restApiId=api.id, stageName="prod", patchOperations=remove)
        logs.delete_log_group(logGroupName=group)
