"""Lambda proxy payloads of an HTTP API: the event sent and the response mapped (pure).

Payload 2.0 follows the API Gateway developer guide ("Working with AWS Lambda proxy
integrations for HTTP APIs",
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html):
header names lowercased and duplicates comma-joined, query values comma-joined, `cookies`
split out, empty maps and an empty body left out. A named stage's prefix stays in `rawPath` and
`requestContext.http.path` (as community reports of real events show). Payload 1.0 is the
REST shape plus `"version": "1.0"`.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ..http.messages import HttpRequest, HttpResponse

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/graphql",
)


@dataclass(frozen=True)
class EventContext:
    """Facts about the request that are not in it: API, stage, route and timing."""

    api_id: str
    account_id: str
    stage: str
    route_key: str
    resource_path: str
    request_id: str
    path_parameters: dict[str, str]
    stage_variables: dict[str, str]
    epoch_ms: int


def new_request_id() -> str:
    """An id shaped like HTTP API's `apigw-requestid` (16 characters, base64)."""
    return base64.b64encode(os.urandom(11)).decode()


def request_time(epoch_ms: int) -> str:
    """`12/Mar/2020:19:03:58 +0000`, independent of the locale."""
    t = time.gmtime(epoch_ms / 1000)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{time.strftime('%H:%M:%S', t)} +0000"
    )


def error(status: int, message: str) -> HttpResponse:
    """API Gateway's own JSON error answer, e.g. 404 `{"message":"Not Found"}`."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


def forwarding_headers(request: HttpRequest) -> list[tuple[str, str]]:
    """The request's headers plus what API Gateway adds on the way to an integration."""
    forwarded_for = request.header("x-forwarded-for")
    headers = [(k, v) for k, v in request.headers if k.lower() not in _ADDED]
    chain = f"{forwarded_for}, {request.source_ip}" if forwarded_for else request.source_ip
    headers += [
        ("X-Forwarded-For", chain),
        ("X-Forwarded-Port", str(request.port)),
        ("X-Forwarded-Proto", "http"),  # AWS: https (the local listener has no TLS)
    ]
    if request.header("x-amzn-trace-id") is None:
        stamp = f"{int(time.time()):08x}"
        headers.append(("X-Amzn-Trace-Id", f"Root=1-{stamp}-{os.urandom(12).hex()}"))
    else:
        headers.append(("X-Amzn-Trace-Id", request.header("x-amzn-trace-id") or ""))
    return headers


_ADDED = {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"}


def event_v2(request: HttpRequest, ctx: EventContext) -> dict[str, Any]:
    """The payload 2.0 event for a Lambda proxy integration."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in forwarding_headers(request):
        name = name.lower()
        if name == "cookie":
            # Payload 2.0 moves cookies into their own list; that the header also leaves
            # `headers` is inferred from adapters that rebuild it [UNCONFIRMED on AWS].
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    host = headers.get("host") or f"127.0.0.1:{request.port}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": ctx.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _joined_query(request.raw_query)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ctx.account_id,
        "apiId": ctx.api_id,
        "domainName": host,
        "domainPrefix": _domain_prefix(host, ctx.api_id),
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": ctx.request_id,
        "routeKey": ctx.route_key,
        "stage": ctx.stage,
        "time": request_time(ctx.epoch_ms),
        "timeEpoch": ctx.epoch_ms,
    }
    body, encoded = _body(request)
    if body is not None:
        event["body"] = body
    if ctx.path_parameters:
        event["pathParameters"] = dict(ctx.path_parameters)
    event["isBase64Encoded"] = encoded
    if ctx.stage_variables:
        event["stageVariables"] = dict(ctx.stage_variables)
    return event


def event_v1(request: HttpRequest, ctx: EventContext) -> dict[str, Any]:
    """The payload 1.0 event: the REST API shape plus `"version": "1.0"`."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in forwarding_headers(request):
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(request.raw_query, keep_blank_values=True):
        multi_query.setdefault(name, []).append(value)
    host = request.header("host") or f"127.0.0.1:{request.port}"
    user_agent = request.header("user-agent") or ""
    body, encoded = _body(request)
    identity = dict.fromkeys(_IDENTITY_KEYS)
    identity.update(sourceIp=request.source_ip, userAgent=user_agent)
    return {
        "version": "1.0",
        "resource": ctx.resource_path,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": {
            "accountId": ctx.account_id,
            "apiId": ctx.api_id,
            "domainName": host,
            "domainPrefix": _domain_prefix(host, ctx.api_id),
            "extendedRequestId": ctx.request_id,
            "httpMethod": request.method,
            "identity": identity,
            "path": request.raw_path,
            "protocol": request.protocol,
            "requestId": ctx.request_id,
            "requestTime": request_time(ctx.epoch_ms),
            "requestTimeEpoch": ctx.epoch_ms,
            "resourceId": None,
            "resourcePath": ctx.resource_path,
            "stage": ctx.stage,
        },
        "pathParameters": dict(ctx.path_parameters) or None,
        "stageVariables": dict(ctx.stage_variables) or None,
        "body": body,
        "isBase64Encoded": encoded,
    }


_IDENTITY_KEYS = (
    "accessKey",
    "accountId",
    "caller",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
    "sourceIp",
    "user",
    "userAgent",
    "userArn",
)


class MalformedResponse(ValueError):
    """The function's result cannot be turned into an HTTP response."""


def response_v2(payload: bytes) -> HttpResponse:
    """Map a payload 2.0 function result to the client's response (MalformedResponse if not).

    Valid JSON without `statusCode` is inferred as 200, `application/json`, with the JSON text
    as the body (a JSON string becomes the body itself).
    """
    result = parsed_result(payload)
    if not isinstance(result, dict) or "statusCode" not in result:
        body = result.encode() if isinstance(result, str) else payload
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    response = HttpResponse(status_code(result.get("statusCode")))
    response.headers = _headers(result.get("headers"), result.get("multiValueHeaders"))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResponse("cookies must be a list of strings")
    response.headers += [("Set-Cookie", c) for c in cookies]
    response.body = _response_body(result)
    return response


def response_v1(payload: bytes) -> HttpResponse:
    """Map a payload 1.0 function result (`statusCode` required) to the client's response."""
    result = parsed_result(payload)
    if not isinstance(result, dict) or "statusCode" not in result:
        raise MalformedResponse("payload 1.0 responses need a statusCode")
    response = HttpResponse(status_code(result["statusCode"]))
    response.headers = _headers(result.get("headers"), result.get("multiValueHeaders"))
    response.body = _response_body(result)
    return response


def parsed_result(payload: bytes) -> Any:
    """The function's result as JSON (MalformedResponse if it is not JSON)."""
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as problem:
        raise MalformedResponse("the function's result is not JSON") from problem


def status_code(value: Any) -> int:
    """A status code from an int or a numeric string (both payload formats, REST APIs too)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedResponse("statusCode must be a number")
    try:
        status = int(value)
    except ValueError as problem:
        raise MalformedResponse("statusCode must be a number") from problem
    if not 100 <= status <= 599:
        raise MalformedResponse("statusCode out of range")
    return status


def _headers(single: Any, multi: Any) -> list[tuple[str, str]]:
    """Response headers from `headers` (scalars) and `multiValueHeaders` (lists)."""
    headers: list[tuple[str, str]] = []
    if single is not None:
        if not isinstance(single, dict):
            raise MalformedResponse("headers must be an object")
        headers += [(str(k), header_text(v)) for k, v in single.items()]
    if multi is not None:
        if not isinstance(multi, dict) or not all(isinstance(v, list) for v in multi.values()):
            raise MalformedResponse("multiValueHeaders must map names to lists")
        headers += [(str(k), header_text(v)) for k, values in multi.items() for v in values]
    return headers


def header_text(value: Any) -> str:
    """A header value from a JSON scalar (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedResponse("header values must be strings")


def _response_body(result: dict[str, Any]) -> bytes:
    """The body, base64-decoded when `isBase64Encoded` is true (whatever the content type)."""
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse("body must be a string")  # [UNCONFIRMED] AWS's handling
    if result.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as problem:
            raise MalformedResponse("body is not valid base64") from problem
    return body.encode()


def _joined_query(raw_query: str) -> dict[str, str]:
    """Query parameters, URL-decoded, repeated names comma-joined (payload 2.0)."""
    joined: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _body(request: HttpRequest) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): text bodies as they are, anything else base64.

    Text means a textual Content-Type (or none) and valid UTF-8 [assumption: AWS's exact
    rule for HTTP APIs is not documented].
    """
    if not request.body:
        return None, False
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    textual = not content_type or _is_text(content_type)
    if textual:
        try:
            return request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode(), True


def _is_text(content_type: str) -> bool:
    """True for textual media types."""
    return content_type.startswith(_TEXT_TYPES) or content_type.endswith(("+json", "+xml"))


def _domain_prefix(host: str, api_id: str) -> str:
    """The first label of the host name; the API id when the host is an IP address."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    label = name.split(".")[0]
    return api_id if not label or label.isdigit() or name.startswith("[") else label
