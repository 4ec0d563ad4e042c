"""REST API Lambda proxy payloads and gateway responses (pure functions).

The event is the payload 1.0 shape ("Input format of a Lambda function for proxy
integration",
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format),
built by the HTTP API's payload 1.0 builder and adjusted for REST: no `version`, the top-level
`path` without the stage, `requestContext.path` with it, a UUID request id, the deployment and
resource ids. The function's result is mapped as the guide's "Output format" says: only
`statusCode`, `headers`, `multiValueHeaders`, `body` and `isBase64Encoded` are allowed; a
missing statusCode is 200; anything else is a malformed response (502).
"""

from __future__ import annotations

import base64
import fnmatch
import uuid
from dataclasses import dataclass
from typing import Any

from ..apigatewayv2 import events
from ..apigatewayv2.events import MalformedResponse
from ..http.messages import HttpRequest, HttpResponse
from .resources import Match

# Gateway responses: (status, message, x-amzn-ErrorType or None)
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html).
# Lambda errors: 500 when Lambda rejects the invoke (no permission, throttled, no such
# function), 502 for a function error or a malformed response, both "Internal server error"
# (https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
MISSING_TOKEN = (403, "Missing Authentication Token", "MissingAuthenticationTokenException")
BAD_GATEWAY = (502, "Internal server error", "InternalServerErrorException")
INTERNAL = (500, "Internal server error", "InternalServerErrorException")
TIMED_OUT = (504, "Endpoint request timed out", None)
TOO_LARGE = (413, "Request Too Long", None)

_RESPONSE_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
)


@dataclass(frozen=True)
class EventFacts:
    """What the event needs that is not in the request itself."""

    api_id: str
    account_id: str
    stage: str
    deployment_id: str
    request_id: str
    extended_request_id: str
    epoch_ms: int
    stage_variables: dict[str, str]
    binary_media_types: tuple[str, ...]


def new_request_ids() -> tuple[str, str]:
    """(requestId, extendedRequestId): a UUID and a 16-character id, as REST APIs send them."""
    return str(uuid.uuid4()), events.new_request_id()


def gateway_response(answer: tuple[int, str, str | None]) -> HttpResponse:
    """API Gateway's own JSON answer, e.g. 403 `{"message":"Missing Authentication Token"}`."""
    status, message, error_type = answer
    response = events.error(status, message)
    if error_type:
        response.headers.append(("x-amzn-ErrorType", error_type))
    return response


def listener_error(status: int, message: str) -> HttpResponse:
    """The answer to a request the listener refuses (413 has REST's own wording)."""
    if status == 413:
        return gateway_response(TOO_LARGE)
    return events.error(status, message)


def event(request: HttpRequest, path: str, match: Match, facts: EventFacts) -> dict[str, Any]:
    """The payload 1.0 event of a REST API Lambda proxy integration."""
    ctx = events.EventContext(
        api_id=facts.api_id,
        account_id=facts.account_id,
        stage=facts.stage,
        route_key="",
        resource_path=match.resource.path,
        request_id=facts.request_id,
        path_parameters=match.path_parameters,
        stage_variables=facts.stage_variables,
        epoch_ms=facts.epoch_ms,
    )
    built = events.event_v1(request, ctx)
    del built["version"]
    built["path"] = path
    built["httpMethod"] = request.method
    built["body"], built["isBase64Encoded"] = _body(request, facts.binary_media_types)
    context = built["requestContext"]
    context.update(
        deploymentId=facts.deployment_id,
        extendedRequestId=facts.extended_request_id,
        resourceId=match.resource.resource_id,
        path=request.raw_path,
    )
    return built


def response(
    payload: bytes, accept: str | None, binary_media_types: tuple[str, ...]
) -> HttpResponse:
    """Map the function's result to the client's response (MalformedResponse if invalid)."""
    result = events.parsed_result(payload)
    if not isinstance(result, dict):
        raise MalformedResponse("the function's result is not a JSON object")
    extra = set(result) - _RESPONSE_KEYS
    if extra:
        raise MalformedResponse(f"unexpected keys {sorted(extra)}")
    status = 200 if result.get("statusCode") is None else events.status_code(result["statusCode"])
    headers = _headers(result.get("headers"), result.get("multiValueHeaders"))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode()
        binary = result.get("isBase64Encoded") is True and _accepts(accept, binary_media_types)
        if binary:
            try:
                data = base64.b64decode(body, validate=True)
            except ValueError as problem:
                raise MalformedResponse("body is not valid base64") from problem
    else:
        raise MalformedResponse("body must be a string")
    return HttpResponse(status, headers, data)


def _headers(single: Any, multi: Any) -> list[tuple[str, str]]:
    """Response headers; a name in both maps becomes one header, `multi values, single`."""
    if single is not None and not isinstance(single, dict):
        raise MalformedResponse("headers must be an object")
    if multi is not None and (
        not isinstance(multi, dict) or not all(isinstance(v, list) for v in multi.values())
    ):
        raise MalformedResponse("multiValueHeaders must map names to lists")
    single, multi = single or {}, multi or {}
    merged: list[tuple[str, str]] = []
    in_multi = {name.lower(): name for name in multi}
    for name, values in multi.items():
        texts = [events.header_text(v) for v in values]
        solo = next((v for k, v in single.items() if k.lower() == name.lower()), None)
        if solo is not None:
            merged.append((name, ", ".join([*texts, events.header_text(solo)])))
        else:
            merged += [(name, text) for text in texts]
    merged += [(k, events.header_text(v)) for k, v in single.items() if k.lower() not in in_multi]
    return merged


def _body(request: HttpRequest, binary_media_types: tuple[str, ...]) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): base64 when the Content-Type is one of binaryMediaTypes."""
    if not request.body:
        return None, False
    if _matches(request.header("content-type"), binary_media_types):
        return base64.b64encode(request.body).decode(), True
    return request.body.decode("utf-8", errors="replace"), False


def _accepts(accept: str | None, binary_media_types: tuple[str, ...]) -> bool:
    """True when one of the Accept header's types is a binary media type of the API."""
    return any(
        _matches(item, binary_media_types) for item in (accept or "").split(",") if item.strip()
    )


def _matches(media_type: str | None, patterns: tuple[str, ...]) -> bool:
    if not media_type or not patterns:
        return False
    media = media_type.split(";")[0].strip().lower()
    return any(fnmatch.fnmatchcase(media, p.lower()) for p in patterns)
