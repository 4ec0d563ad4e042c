"""API Gateway HTTP APIs for the course: routes to a load balancer or a Lambda function.

`ensure_http_api` takes the whole routing table at once and makes the API match it: one
integration per distinct target, one route per route key, and a `$default` stage that
deploys every change by itself (AutoDeploy), so there is no deployment step to forget.

Two ways to put an HTTP API in front of an Application Load Balancer:
- Public ALB (what the course builds): an `HTTP_PROXY` integration whose URI is the ALB's
  `http://<DNS name>` URL. API Gateway calls it over the internet like any client, so the
  ALB must accept traffic from anywhere; the API adds a stable HTTPS endpoint, throttling
  and auth, but does not hide the ALB. Path variables in the URL are filled in from the
  route: to pass the path of an `ANY /{proxy+}` route on, end the URL with `/{proxy}`.
- Private (internal) ALB: create a VPC link (v2) in the ALB's subnets, then an `HTTP_PROXY`
  integration with `ConnectionType="VPC_LINK"`, `ConnectionId=<VPC link id>` and the
  **listener ARN** as `IntegrationUri`. Traffic stays inside the VPC and the ALB has no
  public address; the price is one more resource to create, wait for and tear down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from . import cleanup, naming, web
from .costs import Price
from .lab import Lab, UrlResolver, local_endpoints
from .waiting import wait_for

KIND = "http api"
DEFAULT_STAGE = "$default"
METHODS = ("ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
TIMEOUT_MS = (50, 30000)  # HTTP APIs' integration timeout range
INVOKE_PRINCIPAL = "apigateway.amazonaws.com"

# Route path segments: literal, {param}, or (last only) a greedy {param+}.
_LITERAL = re.compile(r"^[A-Za-z0-9._~:@!$&'()*,;=-]+$")
_PARAM = re.compile(r"^\{[A-Za-z0-9_.-]+\}$")
_GREEDY = re.compile(r"^\{[A-Za-z0-9_.-]+\+\}$")
_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?$"
)


def _check_timeout(timeout_ms: int) -> None:
    """Raise ValueError unless the timeout is within HTTP APIs' range."""
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int):
        raise ValueError(f"timeout_ms must be a whole number of milliseconds, not {timeout_ms!r}")
    if not TIMEOUT_MS[0] <= timeout_ms <= TIMEOUT_MS[1]:
        raise ValueError(
            f"timeout_ms must be between {TIMEOUT_MS[0]} and {TIMEOUT_MS[1]} ms for an HTTP API, "
            f"not {timeout_ms}"
        )


@dataclass(frozen=True)
class HttpProxy:
    """Forward the request as it is to an HTTP URL (e.g. a public ALB's `lab.url_for(alb)`)."""

    url: str
    method: str = "ANY"
    timeout_ms: int = 30000

    def __post_init__(self) -> None:
        """Check the URL, method and timeout before any AWS call."""
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"HttpProxy url must be an http:// or https:// URL, e.g. lab.url_for(alb), "
                f"not {self.url!r}"
            )
        if self.method not in METHODS:
            raise ValueError(f"HttpProxy method must be one of {METHODS}, not {self.method!r}")
        _check_timeout(self.timeout_ms)


@dataclass(frozen=True)
class LambdaProxy:
    """Invoke a Lambda function with the request as a payload format 2.0 event."""

    function_arn: str
    timeout_ms: int = 30000

    def __post_init__(self) -> None:
        """Check the function ARN and timeout before any AWS call."""
        if not isinstance(self.function_arn, str) or not _FUNCTION_ARN.match(self.function_arn):
            raise ValueError(
                "LambdaProxy function_arn must be a Lambda function ARN such as "
                f"function['FunctionArn'], not {self.function_arn!r}"
            )
        _check_timeout(self.timeout_ms)


Integration = HttpProxy | LambdaProxy


def check_route_key(route_key: str) -> str:
    """Return the route key, or raise ValueError saying what a route key looks like."""
    if route_key == "$default":
        return route_key
    method, _, path = route_key.partition(" ") if isinstance(route_key, str) else ("", "", "")
    if method not in METHODS or not _valid_path(path):
        raise ValueError(
            f"route key {route_key!r} is not valid: use '$default' or '<METHOD> /<path>' with "
            f"METHOD one of {', '.join(METHODS)} and path segments that are literal, "
            "'{name}', or a last '{name+}' (e.g. 'GET /items/{id}', 'ANY /{proxy+}')"
        )
    return route_key


def _valid_path(path: str) -> bool:
    """True for '/' or '/'-separated segments, a greedy '{name+}' only as the last one."""
    if path == "/":
        return True
    if not path.startswith("/"):
        return False
    segments = path[1:].split("/")
    return all(
        _LITERAL.match(segment)
        or _PARAM.match(segment)
        or (index == len(segments) - 1 and _GREEDY.match(segment))
        for index, segment in enumerate(segments)
    )


def route_table(
    routes: dict[str, Integration] | Sequence[tuple[str, Integration]],
) -> dict[str, Integration]:
    """Routes as {route key: integration}, checked: valid keys, no key twice, known targets."""
    pairs = list(routes.items()) if isinstance(routes, dict) else list(routes)
    if not pairs:
        raise ValueError("routes is empty: give at least one, e.g. {'$default': HttpProxy(url)}")
    table: dict[str, Integration] = {}
    for entry in pairs:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise ValueError(f"each route must be a (route key, integration) pair, not {entry!r}")
        key, target = entry
        check_route_key(key)
        if not isinstance(target, HttpProxy | LambdaProxy):
            raise ValueError(
                f"route {key!r}: use HttpProxy(...) or LambdaProxy(...), not {target!r}"
            )
        if key in table:
            raise ValueError(f"route key {key!r} appears twice: each route key maps to one target")
        table[key] = target
    return table


def integration_request(target: Integration) -> dict[str, Any]:
    """The create_integration arguments for one target (without ApiId)."""
    if isinstance(target, HttpProxy):
        return {
            "IntegrationType": "HTTP_PROXY",
            "IntegrationUri": target.url,
            "IntegrationMethod": target.method,
            "PayloadFormatVersion": "1.0",  # the only version HTTP_PROXY supports
            "TimeoutInMillis": target.timeout_ms,
        }
    return {
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": target.function_arn,
        "PayloadFormatVersion": "2.0",
        "TimeoutInMillis": target.timeout_ms,
    }


def as_target(integration: dict[str, Any]) -> Integration | None:
    """The HttpProxy/LambdaProxy an existing integration implements (None if neither)."""
    kind, uri = integration.get("IntegrationType"), integration.get("IntegrationUri", "")
    timeout = int(integration.get("TimeoutInMillis") or 30000)
    try:
        if kind == "HTTP_PROXY" and integration.get("ConnectionType", "INTERNET") == "INTERNET":
            return HttpProxy(uri, integration.get("IntegrationMethod") or "ANY", timeout)
        if kind == "AWS_PROXY" and integration.get("PayloadFormatVersion") == "2.0":
            return LambdaProxy(uri, timeout)
    except ValueError:
        return None
    return None


def ensure_http_api(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    routes: dict[str, Integration] | Sequence[tuple[str, Integration]],
) -> dict[str, Any]:
    """Get or create an HTTP API whose routes, integrations and $default stage match `routes`."""
    table = route_table(routes)
    api_name = lab.name(pattern, name, 128)
    client = lab.client("apigatewayv2")
    tags = lab.tags(pattern)
    api = _find_api(client, api_name)
    if api is None:
        api = client.create_api(
            Name=api_name,
            ProtocolType="HTTP",
            Description=f"Course pattern {pattern}: {name}",
            Tags=tags,
        )
        lab.ledger.record(KIND, api["ApiId"], pattern)
    api_id = api["ApiId"]

    # Integrations: keep the ones that already implement a wanted target, create the rest.
    existing = _items(client.get_integrations, ApiId=api_id)
    ids: dict[Integration, str] = {}
    for integration in existing:
        target = as_target(integration)
        if target in table.values() and target not in ids:
            ids[target] = integration["IntegrationId"]
    for target in dict.fromkeys(table.values()):
        if target not in ids:
            created = client.create_integration(ApiId=api_id, **integration_request(target))
            ids[target] = created["IntegrationId"]

    # Routes: point each key at its integration; drop keys no longer wanted.
    current = {route["RouteKey"]: route for route in _items(client.get_routes, ApiId=api_id)}
    for key, target in table.items():
        wanted = f"integrations/{ids[target]}"
        if key not in current:
            client.create_route(ApiId=api_id, RouteKey=key, Target=wanted)
        elif current[key].get("Target") != wanted:
            client.update_route(ApiId=api_id, RouteId=current[key]["RouteId"], Target=wanted)
    for key, route in current.items():
        if key not in table:
            client.delete_route(ApiId=api_id, RouteId=route["RouteId"])
    # Only now: AWS refuses to delete an integration that a route still targets.
    dropped = [i for i in existing if i["IntegrationId"] not in ids.values()]
    for integration in dropped:
        client.delete_integration(ApiId=api_id, IntegrationId=integration["IntegrationId"])

    _ensure_default_stage(client, api_id, tags)
    functions = {target.function_arn for target in ids if isinstance(target, LambdaProxy)}
    for function_arn in sorted(functions):
        allow_invoke(lab, function_arn, api_id)
    # A function the API no longer calls should no longer be callable by it.
    for function_arn in sorted(_function_arns(dropped) - functions):
        revoke_invoke(lab, function_arn, api_id)
    return _without_metadata(client.get_api(ApiId=api_id))


def wait_until_served(lab: Lab, url: str, *, timeout: float = 120) -> web.Response:
    """GET `url` until the API's stage serves it; the first answer that is not 404 or 503."""
    # A new or just-deployed stage answers 404 for its first seconds, a starting backend 503.
    return wait_for_answer(
        lab,
        url,
        not_yet=(404, 503),
        what="the API's stage to serve",
        hint="A route that exists must answer: check the URL's path against the routes.",
        timeout=timeout,
    )


def wait_for_answer(
    lab: Lab, url: str, *, not_yet: Collection[int], what: str, hint: str, timeout: float
) -> web.Response:
    """GET `url` until its status is not one of `not_yet`; that answer (REST APIs' too)."""

    def answered() -> web.Response | None:
        answer = web.request("GET", url)
        return None if answer.status in not_yet else answer

    return wait_for(
        answered,
        what=what,
        timeout=timeout,
        estimate=20 if lab.backend == "aws" else 1,
        interval=2 if lab.backend == "aws" else 0.3,
        hint=hint,
    )


def allow_invoke(lab: Lab, function_arn: str, api_id: str) -> None:
    """Let this API, and only it, invoke the function (a resource-based policy statement)."""
    # Any stage, method and path of this API; another API in the account cannot.
    source_arn = f"arn:aws:execute-api:{lab.region}:{lab.account_id}:{api_id}/*/*"
    grant_invoke(lab, function_arn, statement_id_for(api_id), source_arn)


def grant_invoke(lab: Lab, function_arn: str, statement_id: str, source_arn: str) -> None:
    """Add the statement letting API Gateway invoke the function from `source_arn`, once.

    REST APIs (`helpers.apigateway`) grant theirs the same way, per route.
    """
    client = lab.client("lambda")
    if statement_id in policy_statement_ids(client, function_arn):
        return
    try:
        client.add_permission(
            FunctionName=function_arn,
            StatementId=statement_id,
            Action="lambda:InvokeFunction",
            Principal=INVOKE_PRINCIPAL,
            SourceArn=source_arn,
        )
    except client.exceptions.ResourceConflictException:
        # "already exists" (added meanwhile) is fine; "an update is in progress" is not.
        if statement_id not in policy_statement_ids(client, function_arn):
            raise


def revoke_invoke(lab: Lab, function_arn: str, api_id: str) -> None:
    """Remove this API's invoke permission from a function (gone already is fine)."""
    try:
        lab.client("lambda").remove_permission(
            FunctionName=function_arn, StatementId=statement_id_for(api_id)
        )
    except ClientError as error:
        if not cleanup.is_not_found(error):  # no such function or statement: nothing to do
            raise


def statement_id_for(api_id: str) -> str:
    """The course's permission statement id for one API (unique within a function policy)."""
    return f"course-apigateway-{api_id}"


def policy_statement_ids(client: Any, function_arn: str) -> set[str]:
    """Statement ids in the function's resource policy (empty if it has none)."""
    try:
        policy = client.get_policy(FunctionName=function_arn)["Policy"]
    except client.exceptions.ResourceNotFoundException:
        return set()
    return {statement.get("Sid", "") for statement in json.loads(policy).get("Statement", [])}


def _ensure_default_stage(client: Any, api_id: str, tags: dict[str, str]) -> None:
    """A `$default` stage with AutoDeploy (so no create_deployment call is ever needed)."""
    stages = {stage["StageName"]: stage for stage in _items(client.get_stages, ApiId=api_id)}
    stage = stages.get(DEFAULT_STAGE)
    if stage is None:
        client.create_stage(ApiId=api_id, StageName=DEFAULT_STAGE, AutoDeploy=True, Tags=tags)
    elif not stage.get("AutoDeploy"):
        client.update_stage(ApiId=api_id, StageName=DEFAULT_STAGE, AutoDeploy=True)


def _items(call: Any, **arguments: Any) -> list[dict[str, Any]]:
    """Every item of a get_* call that pages with NextToken (these have no paginator)."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = call(**arguments, **({"NextToken": token} if token else {}))
        items.extend(page.get("Items", []))
        token = page.get("NextToken")
        if not token:
            return items


def _find_api(client: Any, api_name: str) -> dict[str, Any] | None:
    """The oldest HTTP API of that name (API Gateway allows duplicate names), or None."""
    found = [
        api
        for api in _items(client.get_apis)
        if api.get("Name") == api_name and api.get("ProtocolType") == "HTTP"
    ]
    return min(found, key=lambda api: str(api.get("CreatedDate", ""))) if found else None


def _function_arns(integrations: Iterable[dict[str, Any]]) -> set[str]:
    """The Lambda functions that these integrations invoke."""
    return {
        integration["IntegrationUri"]
        for integration in integrations
        if integration.get("IntegrationType") == "AWS_PROXY"
    }


def _without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    """A response without botocore's ResponseMetadata, as a notebook wants to show it."""
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course HTTP APIs (all runs), by name."""
    for api in _items(lab.client("apigatewayv2").get_apis):
        parts = naming.parse_name(api.get("Name", ""))
        if parts is not None:
            yield cleanup.Resource(
                KIND, api["ApiId"], parts.pattern, parts.run_id, {"name": api["Name"]}
            )


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete an API, and the invoke permissions it was given on functions that outlive it."""
    client = lab.client("apigatewayv2")
    functions = _function_arns(_items(client.get_integrations, ApiId=resource.identifier))
    client.delete_api(ApiId=resource.identifier)
    for function_arn in sorted(functions):
        revoke_invoke(lab, function_arn, resource.identifier)


# Nothing calls an API that the course could delete: it goes first.
RESOURCE_KINDS = [cleanup.ResourceKind(KIND, _find, _delete)]


def _aws_http_api_url(lab: Lab, api: dict[str, Any], stage: str | None) -> str:
    """On AWS: the API's execute-api endpoint, plus the stage unless it is $default."""
    base = api["ApiEndpoint"]
    return base if stage in (None, DEFAULT_STAGE) else f"{base}/{stage}"


def _local_http_api_url(lab: Lab, api: dict[str, Any], stage: str | None) -> str:
    """Locally: the loopback address of the API's listener, plus the stage."""
    found = local_endpoints(lab).get("apigatewayv2", {}).get("apis", {})
    base = found.get(api["ApiId"])
    if base is None:
        raise LookupError(f"API {api['ApiId']} is not served by the local cloud")
    return base if stage in (None, DEFAULT_STAGE) else f"{base}/{stage}"


# An HTTP API (get_api) has ApiEndpoint and ProtocolType; REST APIs are helpers.apigateway's.
URL_RESOLVERS = [
    UrlResolver(
        "http-api",
        recognises=lambda api: "ApiEndpoint" in api or "ProtocolType" in api,
        builders={"aws": _aws_http_api_url, "local": _local_http_api_url},
    ),
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "http_api_million_requests": Price(1.00, "1M requests"),
}
