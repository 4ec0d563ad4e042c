"""REST API routing, proxy response mapping and the Lambda permission check (pure logic)."""

from __future__ import annotations

import base64
import json

import pytest

from localcloud.apigateway import access_log, permissions, proxy, resources

OTHER_ACCOUNT = "123456789012"[::-1]  # any account but the local cloud's

SOURCE = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/items/{id}"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:items"


def _tree(*paths: tuple[str, str]) -> resources.Deployment:
    """A deployment with one method per (path, method)."""
    methods: dict[str, dict] = {}
    for path, method in paths:
        methods.setdefault(path, {})[method] = {"httpMethod": method}
    items = [
        {"id": f"r{n}", "path": p, "resourceMethods": m} for n, (p, m) in enumerate(methods.items())
    ]
    return resources.deployment_of("d1", {"name": "shop"}, items)


TREE = _tree(
    ("/", "GET"),
    ("/items", "GET"),
    ("/items/{id}", "GET"),
    ("/items/{id}", "DELETE"),
    ("/items/special", "GET"),
    ("/items/{id}/tags/{tag}", "ANY"),
    ("/files/{proxy+}", "ANY"),
    ("/{proxy+}", "POST"),
)


@pytest.mark.parametrize(
    ("method", "path", "resource", "parameters"),
    [
        ("GET", "/", "/", {}),
        ("GET", "", "/", {}),
        ("GET", "/items", "/items", {}),
        ("GET", "/items/", "/items", {}),
        ("GET", "/items/special", "/items/special", {}),  # literal over {id}
        ("GET", "/items/7", "/items/{id}", {"id": "7"}),
        ("GET", "/items/a%2Fb", "/items/{id}", {"id": "a/b"}),  # decoded after matching
        ("DELETE", "/items/7", "/items/{id}", {"id": "7"}),
        ("PATCH", "/items/7/tags/red", "/items/{id}/tags/{tag}", {"id": "7", "tag": "red"}),
        ("GET", "/files/a/b/c", "/files/{proxy+}", {"proxy": "a/b/c"}),
        ("PUT", "/files/x", "/files/{proxy+}", {"proxy": "x"}),
        # POST /items: /items has no POST and no ANY, so the greedy root resource serves it.
        ("POST", "/items", "/{proxy+}", {"proxy": "items"}),
        ("POST", "/files/x", "/files/{proxy+}", {"proxy": "x"}),  # ANY on the deeper greedy
    ],
)
def test_the_most_specific_resource_with_the_method_wins(method, path, resource, parameters):
    match = resources.select(TREE, method, path)
    assert match is not None
    assert (match.resource.path, match.path_parameters) == (resource, parameters)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing"),  # only POST /{proxy+} would match
        ("DELETE", "/items"),
        ("GET", "/files"),  # a greedy part needs a segment of its own
        ("GET", "/items/7/tags"),
        ("GET", "/items/7/extra"),
    ],
)
def test_no_match(method, path):
    assert resources.select(TREE, method, path) is None


def test_source_arn_names_stage_defined_method_and_resource_template():
    match = resources.select(TREE, "PATCH", "/items/7/tags/red")
    assert match is not None
    assert resources.source_arn("us-east-1", "123456789012", "abc123", "prod", match) == (
        "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/ANY/items/{id}/tags/{tag}"
    )


def test_create_resource_conflicts():
    assert resources.check_path_part(["items"], "orders") is None
    assert "same parent" in resources.check_path_part(["items"], "items")
    assert "only one is allowed" in resources.check_path_part(["items", "{id}"], "{proxy+}")
    assert resources.check_path_part(["{id}"], "items") is None


def _statement(source: str | None = None, **changes) -> dict:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": FUNCTION,
    }
    if source is not None:
        statement["Condition"] = {"ArnLike": {"AWS:SourceArn": source}}
    statement.update(changes)
    return statement


@pytest.mark.parametrize(
    ("statements", "allowed"),
    [
        ([], False),
        ([_statement()], True),  # no condition: any source
        ([_statement(SOURCE.rsplit(":", 1)[0] + ":abc123/*/GET/items/*")], True),
        ([_statement(SOURCE.rsplit(":", 1)[0] + ":abc123/*/*/*")], True),
        ([_statement(SOURCE.rsplit(":", 1)[0] + ":abc123/*/POST/items/*")], False),
        ([_statement(SOURCE.rsplit(":", 1)[0] + ":other1/*/*/*")], False),
        ([_statement(Principal={"Service": "events.amazonaws.com"})], False),
        ([_statement(Action="lambda:GetFunction")], False),
        ([_statement(Resource=FUNCTION + "-other")], False),
        ([_statement(), _statement(Effect="Deny")], False),
        ([_statement(Condition={"StringEquals": {"AWS:SourceAccount": "123456789012"}})], True),
        ([_statement(Condition={"StringEquals": {"AWS:SourceAccount": OTHER_ACCOUNT}})], False),
    ],
)
def test_resource_policy_decides(statements, allowed):
    assert permissions.allows(statements, FUNCTION, SOURCE, "123456789012") is allowed


def _mapped(result, accept: str | None = None, binary: tuple[str, ...] = ()):
    return proxy.response(json.dumps(result).encode(), accept, binary)


def test_response_mapping_rules():
    response = _mapped({"statusCode": "201", "headers": {"A": 1, "B": False}, "body": "x"})
    assert response.status == 201 and response.body == b"x"
    assert ("A", "1") in response.headers and ("B", "false") in response.headers
    assert ("Content-Type", "application/json") in response.headers
    assert _mapped({}).status == 200 and _mapped({}).body == b""
    assert _mapped({"headers": None, "multiValueHeaders": None, "body": None}).status == 200
    merged = _mapped({"headers": {"x-both": "solo"}, "multiValueHeaders": {"X-Both": ["m"]}})
    assert merged.headers[0] == ("X-Both", "m, solo")
    encoded = base64.b64encode(b"\x89PNG").decode()
    result = {"body": encoded, "isBase64Encoded": True}
    assert _mapped(result, "image/png", ("image/*",)).body == b"\x89PNG"
    assert _mapped(result, "application/json", ("image/*",)).body == encoded.encode()


@pytest.mark.parametrize(
    "result",
    [
        "text",
        None,
        [1],
        {"statusCode": 200, "unexpected": True},
        {"statusCode": "teapot"},
        {"statusCode": True},
        {"statusCode": 700},
        {"body": {"a": 1}},
        {"headers": ["a"]},
        {"headers": {"a": {"b": 1}}},
        {"multiValueHeaders": {"a": "b"}},
    ],
)
def test_malformed_responses(result):
    with pytest.raises(proxy.MalformedResponse):
        _mapped(result)


def test_a_result_that_is_not_json_is_malformed():
    with pytest.raises(proxy.MalformedResponse):
        proxy.response(b"{oops", None, ())


def test_access_log_settings_and_lines():
    stage = {
        "accessLogSettings": {
            "destinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:/api/access:*",
            "format": "$context.requestId $context.status $context.error.message",
        }
    }
    settings = access_log.settings_of(stage)
    assert settings == access_log.AccessLog("/api/access", stage["accessLogSettings"]["format"])
    assert access_log.settings_of({}) is None
    line = access_log.render(settings.line_format, {"requestId": "r-1", "status": 200})
    assert line == "r-1 200 -"
    assert access_log.render(
        '{"ip":"$context.identity.sourceIp"}', {"identity.sourceIp": "::1"}
    ) == ('{"ip":"::1"}')
