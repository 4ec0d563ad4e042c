"""HTTP API routing, payload 2.0 events, Lambda response mapping and metrics, without a local
cloud."""

from __future__ import annotations

import base64
import json

import pytest

from localcloud.apigatewayv2 import events, metrics, routing
from localcloud.apigatewayv2.events import EventContext, MalformedResponse
from localcloud.apigatewayv2.gateway import function_of
from localcloud.http.messages import HttpRequest


def _routes(*keys: str) -> list[routing.Route]:
    return [routing.parse_route_key(k, f"integrations/{n}") for n, k in enumerate(keys)]


def _selected(routes: list[routing.Route], method: str, path: str) -> str | None:
    match = routing.select_route(routes, method, path)
    return match.route.route_key if match else None


def test_aws_documented_example_selects_the_most_specific_route():
    # The example table of the developer guide's "Routing API requests" section.
    routes = _routes(
        "GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default"
    )
    assert _selected(routes, "GET", "/pets/dog/1") == "GET /pets/dog/1"
    assert _selected(routes, "GET", "/pets/dog/2") == "GET /pets/dog/{id}"
    assert _selected(routes, "GET", "/pets/cat/1") == "GET /pets/{proxy+}"
    assert _selected(routes, "POST", "/test/5") == "ANY /{proxy+}"
    assert _selected(routes, "GET", "/") == "$default"  # a greedy variable needs a segment


def test_named_method_beats_any_and_literal_segments_beat_variables_left_first():
    routes = _routes("ANY /items/{id}", "GET /items/{id}", "GET /{kind}/special")
    assert _selected(routes, "GET", "/items/7") == "GET /items/{id}"
    assert _selected(routes, "DELETE", "/items/7") == "ANY /items/{id}"
    assert _selected(routes, "GET", "/items/special") == "GET /items/{id}"
    assert _selected(routes, "GET", "/other/special") == "GET /{kind}/special"


def test_longer_greedy_prefix_wins_and_no_match_without_default_is_none():
    routes = _routes("ANY /{proxy+}", "ANY /api/{proxy+}")
    assert _selected(routes, "GET", "/api/v1/x") == "ANY /api/{proxy+}"
    assert _selected(routes, "GET", "/apix") == "ANY /{proxy+}"
    assert routing.select_route(_routes("GET /items"), "GET", "/nothing") is None
    assert routing.select_route(_routes("GET /items"), "POST", "/items") is None


def test_path_parameters_are_url_decoded_and_greedy_keeps_slashes():
    routes = _routes("GET /items/{id}", "ANY /files/{path+}")
    assert routing.select_route(routes, "GET", "/items/a%20b").path_parameters == {"id": "a b"}
    match = routing.select_route(routes, "PUT", "/files/x/y%2Fz.txt")
    assert match.path_parameters == {"path": "x/y/z.txt"}
    assert _selected(routes, "GET", "/items/") is None  # a variable never matches ""
    assert _selected(routes, "GET", "/items/1/") is None  # trailing slashes count


def test_stage_is_the_first_segment_when_it_exists_else_default():
    assert routing.select_stage({"$default", "prod"}, "/prod/items/1") == ("prod", "/items/1")
    assert routing.select_stage({"$default", "prod"}, "/prod") == ("prod", "/")
    assert routing.select_stage({"$default", "prod"}, "/items/1") == ("$default", "/items/1")
    assert routing.select_stage({"prod"}, "/items/1") is None
    assert routing.select_stage({"$default"}, "/$default/x") == ("$default", "/$default/x")


def test_integration_url_substitutes_variables_and_default_route_appends_the_path():
    match = routing.select_route(_routes("ANY /backend/{proxy+}"), "GET", "/backend/a/b c")
    url = routing.integration_url("http://h:1/base/{proxy}", match, "/backend/a/b%20c", "q=1")
    assert url == "http://h:1/base/a/b%20c?q=1"
    match = routing.select_route(_routes("GET /items/{id}"), "GET", "/items/x%2Fy")
    assert routing.integration_url("http://h/i/{id}?v=2", match, "", "a=b") == (
        "http://h/i/x%2Fy?v=2&a=b"
    )
    default = routing.select_route(_routes("$default"), "GET", "/store/checkout")
    assert routing.integration_url("http://h:8/", default, "/prod/store/checkout", "") == (
        "http://h:8/prod/store/checkout"
    )


def test_function_of_reads_lambda_and_apigateway_invoke_arns():
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:echo"
    assert function_of(arn) == (arn, None)
    assert function_of(arn + ":live") == (arn, "live")
    invoke = f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{arn}/invocations"
    assert function_of(invoke) == (arn, None)


def _context(**overrides) -> EventContext:
    values = {
        "api_id": "abc123",
        "account_id": "123456789012",
        "stage": "$default",
        "route_key": "GET /items/{id}",
        "resource_path": "/items/{id}",
        "request_id": "RL2XYiwjPHcEMEQ=",
        "path_parameters": {"id": "7"},
        "stage_variables": {},
        "epoch_ms": 1583348638390,
    }
    return EventContext(**{**values, **overrides})


def test_event_v2_has_the_documented_fields():
    request = HttpRequest(
        method="GET",
        raw_path="/items/7",
        raw_query="tag=a&tag=b&empty=&x=%2F",
        headers=[
            ("Host", "127.0.0.1:5000"),
            ("User-Agent", "ua/1"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "c1=v1; c2=v2"),
        ],
        source_ip="127.0.0.9",
        port=5000,
    )
    event = events.event_v2(request, _context())
    assert event["version"] == "2.0" and event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/7" and event["rawQueryString"] == request.raw_query
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-multi"] == "one,two" and "cookie" not in event["headers"]
    assert event["headers"]["x-forwarded-for"] == "127.0.0.9"
    assert event["headers"]["x-forwarded-port"] == "5000"
    assert event["queryStringParameters"] == {"tag": "a,b", "empty": "", "x": "/"}
    assert event["pathParameters"] == {"id": "7"}
    assert "body" not in event and event["isBase64Encoded"] is False
    assert "stageVariables" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/items/7",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.9",
        "userAgent": "ua/1",
    }
    assert context["time"] == "04/Mar/2020:19:03:58 +0000"
    assert context["timeEpoch"] == 1583348638390
    assert context["domainName"] == "127.0.0.1:5000" and context["domainPrefix"] == "abc123"
    assert (context["stage"], context["routeKey"]) == ("$default", "GET /items/{id}")


def test_event_v2_omits_empty_maps_and_base64_encodes_binary_bodies():
    binary = HttpRequest("POST", "/up", "", [("Content-Type", "image/png")], b"\x89PNG\x00")
    event = events.event_v2(binary, _context(path_parameters={}))
    assert "queryStringParameters" not in event and "pathParameters" not in event
    assert "cookies" not in event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG\x00"
    text = HttpRequest("POST", "/up", "", [("Content-Type", "application/json")], b'{"a":1}')
    event = events.event_v2(text, _context(stage_variables={"v": "1"}))
    assert event["body"] == '{"a":1}' and event["isBase64Encoded"] is False
    assert event["stageVariables"] == {"v": "1"}


def test_event_v1_is_the_rest_shape_with_version():
    request = HttpRequest("GET", "/prod/items/7", "a=1&a=2", [("Host", "h"), ("X-A", "1")])
    event = events.event_v1(request, _context(stage="prod"))
    assert event["version"] == "1.0" and event["httpMethod"] == "GET"
    assert event["resource"] == "/items/{id}" and event["path"] == "/prod/items/7"
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["headers"]["X-A"] == "1" and event["body"] is None
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["stage"] == "prod"


def test_response_v2_with_status_code_headers_cookies_and_base64_body():
    payload = {
        "statusCode": "201",
        "headers": {"Content-Type": "text/plain", "X-Flag": True},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "cookies": ["s=1; HttpOnly", "t=2"],
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    response = events.response_v2(json.dumps(payload).encode())
    assert response.status == 201 and response.body == b"\x00\x01"
    assert ("X-Flag", "true") in response.headers
    assert [v for k, v in response.headers if k == "X-Many"] == ["a", "b"]
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["s=1; HttpOnly", "t=2"]


def test_response_v2_infers_200_json_without_status_code():
    response = events.response_v2(b'{"message": "hi"}')
    assert response.status == 200 and response.body == b'{"message": "hi"}'
    assert response.headers == [("Content-Type", "application/json")]
    assert events.response_v2(b'"Hello from Lambda!"').body == b"Hello from Lambda!"
    assert events.response_v2(b"[1, 2]").body == b"[1, 2]"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"statusCode": "teapot"}',
        b'{"statusCode": 200, "headers": ["x"]}',
        b'{"statusCode": 200, "body": {"nested": true}}',
        b'{"statusCode": 200, "cookies": "a=1"}',
        b'{"statusCode": 200, "body": "***", "isBase64Encoded": true}',
    ],
)
def test_malformed_v2_responses_are_refused(payload):
    with pytest.raises(MalformedResponse):
        events.response_v2(payload)


def test_response_v1_needs_a_status_code():
    assert events.response_v1(b'{"statusCode": 204}').status == 204
    with pytest.raises(MalformedResponse):
        events.response_v1(b'{"body": "x"}')


def test_error_bodies_are_compact_json():
    response = events.error(404, "Not Found")
    assert response.body == b'{"message":"Not Found"}'
    assert response.headers == [("Content-Type", "application/json")]


def test_request_metrics_by_api_and_by_api_and_stage():
    data = metrics.HTTP_API.data("a1", "prod", 502, 12.34567, 10.0)
    by_api, by_stage = {"ApiId": "a1"}, {"ApiId": "a1", "Stage": "prod"}
    expected = [
        ("Count", 1, "Count"),
        ("4xx", 0, "Count"),
        ("5xx", 1, "Count"),
        ("Latency", 12.346, "Milliseconds"),
        ("IntegrationLatency", 10.0, "Milliseconds"),
    ]
    assert data == [(n, d, v, u) for d in (by_api, by_stage) for n, v, u in expected]
    # No integration ran (e.g. no route): no IntegrationLatency.
    names = [name for name, *_ in metrics.HTTP_API.data("a1", "$default", 404, 1.0, None)]
    assert names == ["Count", "4xx", "5xx", "Latency"] * 2
