"""API Gateway REST APIs (v1) for the course: resources, Lambda proxy methods, a deployed stage.

`ensure_rest_api` takes the whole route table ("GET /customers/{customer_id}" -> function ARN)
and makes the API match it, in the order AWS needs:
1. the REST API (REGIONAL endpoint), found by name or created;
2. one resource per path segment, `{name}` segments becoming path parameters;
3. per route a method (no authorization) with an `AWS_PROXY` integration; for Lambda the
   integration's own HTTP method is always POST, whatever the client's method;
4. per route a permission on the function for `apigateway.amazonaws.com`, scoped to this
   API, this method and this path: `arn:aws:execute-api:REGION:ACCOUNT:API_ID/*/GET/customers/*`;
5. a deployment to the stage. Unlike an HTTP API's AutoDeploy stage, a REST API serves what
   was last *deployed*: a change without a new deployment is invisible to clients. The
   deployment's description records the route table, so a re-run deploys only on a change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import cleanup, naming
from .apigatewayv2 import grant_invoke, policy_statement_ids, wait_for_answer
from .costs import Price
from .lab import Lab, UrlResolver, local_endpoints

KIND = "rest api"
METHODS = ("ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_SEGMENT = re.compile(r"^([A-Za-z0-9._~-]+|\{[A-Za-z0-9_]+\+?\})$")
_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}$"
)
_STATEMENT_PREFIX = "course-rest-"


@dataclass(frozen=True)
class Route:
    """One method of one resource path, proxied to a Lambda function."""

    method: str
    path: str  # "/customers/{customer_id}"
    function_arn: str

    @property
    def key(self) -> str:
        """'GET /customers/{customer_id}'."""
        return f"{self.method} {self.path}"

    def source_arn(self, lab: Lab, api_id: str) -> str:
        """The execute-api ARN of this route in any stage: path parameters become '*'."""
        path = re.sub(r"\{[^}]+\}", "*", self.path)
        method = "*" if self.method == "ANY" else self.method
        return f"arn:aws:execute-api:{lab.region}:{lab.account_id}:{api_id}/*/{method}{path}"


def route_table(routes: Mapping[str, str]) -> list[Route]:
    """Routes from {"METHOD /path": function ARN}, checked before any AWS call."""
    if not routes:
        raise ValueError("routes is empty: give at least one, e.g. {'GET /items': arn}")
    table = []
    for key, function_arn in routes.items():
        method, _, path = key.partition(" ") if isinstance(key, str) else ("", "", "")
        segments = path[1:].split("/") if path.startswith("/") else [""]
        if method not in METHODS or not all(_SEGMENT.match(s) for s in segments):
            raise ValueError(
                f"route {key!r} is not valid: use '<METHOD> /<path>' with METHOD one of "
                f"{', '.join(METHODS)} and segments that are literal or '{{name}}' "
                "(e.g. 'GET /customers/{customer_id}')"
            )
        if any(s.endswith("+}") for s in segments[:-1]):
            raise ValueError(f"route {key!r}: a greedy '{{name+}}' segment must be the last")
        if not isinstance(function_arn, str) or not _FUNCTION_ARN.match(function_arn):
            raise ValueError(
                f"route {key!r}: give a function ARN such as function['FunctionArn'], "
                f"not {function_arn!r}"
            )
        table.append(Route(method, path, function_arn))
    return table


def integration_uri(lab: Lab, function_arn: str) -> str:
    """The URI of an AWS_PROXY integration that invokes this function."""
    return (
        f"arn:aws:apigateway:{lab.region}:lambda:path/2015-03-31/functions/"
        f"{function_arn}/invocations"
    )


def ensure_rest_api(
    lab: Lab, pattern: str, name: str, *, routes: Mapping[str, str], stage: str = "prod"
) -> dict[str, Any]:
    """Get or create a REST API whose resources and methods match `routes`, deployed to stage."""
    table = route_table(routes)
    api_name = lab.name(pattern, name, 128)
    client = lab.client("apigateway")
    api = _find_api(client, api_name)
    if api is None:
        api = client.create_rest_api(
            name=api_name,
            description=f"Course pattern {pattern}: {name}",
            endpointConfiguration={"types": ["REGIONAL"]},
            tags=lab.tags(pattern),
        )
        lab.ledger.record(KIND, api["id"], pattern)
    api_id = api["id"]
    resources = _ensure_resources(client, api_id, {route.path for route in table})
    for route in table:
        _ensure_method(lab, client, api_id, resources[route.path], route)
    _drop_unwanted_methods(client, api_id, resources, table)
    for route in table:
        allow_invoke(lab, route, api_id)
    _deploy_if_changed(client, api_id, stage, table)
    return _without_metadata(client.get_rest_api(restApiId=api_id))


def allow_invoke(lab: Lab, route: Route, api_id: str) -> None:
    """Let this API invoke the function for this one route (a resource-policy statement)."""
    grant_invoke(
        lab, route.function_arn, statement_id_for(api_id, route), route.source_arn(lab, api_id)
    )


def statement_id_for(api_id: str, route: Route) -> str:
    """The permission statement id of one route of one API (unique in a function's policy)."""
    digest = hashlib.sha256(route.key.encode()).hexdigest()[:10]
    return f"{_STATEMENT_PREFIX}{api_id}-{route.method.lower()}-{digest}"


def revoke_invokes(lab: Lab, function_arn: str, api_id: str) -> None:
    """Remove every permission this API was given on a function (gone already is fine)."""
    client = lab.client("lambda")
    for statement_id in policy_statement_ids(client, function_arn):
        if statement_id.startswith(f"{_STATEMENT_PREFIX}{api_id}-"):
            try:
                client.remove_permission(FunctionName=function_arn, StatementId=statement_id)
            except ClientError as error:
                if not cleanup.is_not_found(error):
                    raise


def wait_until_deployed(lab: Lab, url: str, *, timeout: float = 120) -> None:
    """Wait until the stage answers with something other than 403 or 404 (new deployment)."""
    wait_for_answer(
        lab,
        url,
        not_yet=(403, 404),
        what="the REST API's stage to serve",
        hint="Check that the URL names a deployed route (403 = no such route or method).",
        timeout=timeout,
    )


def routes_frame(lab: Lab, api_id: str) -> list[dict[str, str]]:
    """The API's methods as rows: method, resource path, integration type and function."""
    client = lab.client("apigateway")
    rows = []
    for resource in _resources(client, api_id):
        for method, detail in sorted((resource.get("resourceMethods") or {}).items()):
            integration = (detail or {}).get("methodIntegration") or {}
            uri = integration.get("uri", "")
            function = uri.split(":function:")[-1].split("/")[0] if ":function:" in uri else ""
            rows.append(
                {
                    "method": method,
                    "resource": resource["path"],
                    "integration": integration.get("type", ""),
                    "function": function,
                }
            )
    return sorted(rows, key=lambda row: (row["resource"], row["method"]))


def _ensure_resources(client: Any, api_id: str, paths: Iterable[str]) -> dict[str, str]:
    """Create the resources of every path, parents first; return {path: resource id}."""
    ids = {resource["path"]: resource["id"] for resource in _resources(client, api_id)}
    for path in sorted(paths, key=lambda p: p.count("/")):
        current = ""
        for segment in path.strip("/").split("/") if path != "/" else []:
            parent, current = current or "/", f"{current}/{segment}"
            if current not in ids:
                created = client.create_resource(
                    restApiId=api_id, parentId=ids[parent], pathPart=segment
                )
                ids[current] = created["id"]
    return ids


def _ensure_method(lab: Lab, client: Any, api_id: str, resource_id: str, route: Route) -> None:
    """A method without authorization and its AWS_PROXY integration to the route's function."""
    uri = integration_uri(lab, route.function_arn)
    try:
        method = client.get_method(
            restApiId=api_id, resourceId=resource_id, httpMethod=route.method
        )
    except client.exceptions.NotFoundException:
        method = None
    if method is None:
        client.put_method(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=route.method,
            authorizationType="NONE",
        )
    integration = (method or {}).get("methodIntegration") or {}
    if integration.get("type") != "AWS_PROXY" or integration.get("uri") != uri:
        client.put_integration(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=route.method,
            type="AWS_PROXY",
            integrationHttpMethod="POST",  # Lambda's Invoke API: always POST
            uri=uri,
        )


def _drop_unwanted_methods(
    client: Any, api_id: str, resources: dict[str, str], table: list[Route]
) -> None:
    """Delete methods that are no longer in the route table, so re-runs can narrow the API."""
    wanted = {(route.path, route.method) for route in table}
    for resource in _resources(client, api_id):
        for method in resource.get("resourceMethods") or {}:
            if (resource["path"], method) not in wanted:
                client.delete_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)


def _signature(table: list[Route]) -> str:
    """A description that identifies the route table a deployment was made from."""
    text = json.dumps(sorted((r.key, r.function_arn) for r in table))
    return f"course routes {hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _deploy_if_changed(client: Any, api_id: str, stage: str, table: list[Route]) -> None:
    """Deploy to the stage unless its current deployment was made from this route table."""
    signature = _signature(table)
    try:
        deployment_id = client.get_stage(restApiId=api_id, stageName=stage)["deploymentId"]
        current = client.get_deployment(restApiId=api_id, deploymentId=deployment_id)
    except client.exceptions.NotFoundException:
        current = {}
    if current.get("description") != signature:
        client.create_deployment(restApiId=api_id, stageName=stage, description=signature)


def _resources(client: Any, api_id: str) -> list[dict[str, Any]]:
    """Every resource of the API, with its methods and their integrations."""
    pages = client.get_paginator("get_resources").paginate(restApiId=api_id, embed=["methods"])
    return [item for page in pages for item in page["items"]]


def _find_api(client: Any, api_name: str) -> dict[str, Any] | None:
    """The oldest REST API of that name (API Gateway allows duplicate names), or None."""
    found = [
        api
        for page in client.get_paginator("get_rest_apis").paginate()
        for api in page["items"]
        if api.get("name") == api_name
    ]
    return min(found, key=lambda api: str(api.get("createdDate", ""))) if found else None


def _without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    """A response without botocore's ResponseMetadata, as a notebook wants to show it."""
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def _function_arns(lab: Lab, api_id: str) -> set[str]:
    """The Lambda functions that the API's integrations invoke."""
    client = lab.client("apigateway")
    found = set()
    for resource in _resources(client, api_id):
        for detail in (resource.get("resourceMethods") or {}).values():
            uri = ((detail or {}).get("methodIntegration") or {}).get("uri", "")
            if "/functions/" in uri:
                found.add(uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0])
    return found


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course REST APIs (all runs), by name."""
    for page in lab.client("apigateway").get_paginator("get_rest_apis").paginate():
        for api in page["items"]:
            parts = naming.parse_name(api.get("name", ""))
            if parts is not None:
                yield cleanup.Resource(
                    KIND, api["id"], parts.pattern, parts.run_id, {"name": api["name"]}
                )


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete an API and the invoke permissions it was given on functions that outlive it."""
    functions = _function_arns(lab, resource.identifier)
    # DeleteRestApi is throttled hard on AWS (about one call per 30 s per account).
    cleanup.retry_while(
        lab,
        lambda: lab.client("apigateway").delete_rest_api(restApiId=resource.identifier),
        ("TooManyRequestsException",),
        f"deleting REST API {resource.identifier} (API Gateway throttles deletes)",
        300,
    )
    for function_arn in sorted(functions):
        try:
            revoke_invokes(lab, function_arn, resource.identifier)
        except ClientError as error:
            if not cleanup.is_not_found(error):
                raise


def _aws_rest_api_url(lab: Lab, api: dict[str, Any], stage: str | None) -> str:
    """On AWS: a REST API's (API Gateway v1) invoke URL for one stage."""
    if stage is None:
        raise ValueError("a REST API URL needs its stage, e.g. url_for(api, 'prod')")
    return f"https://{api['id']}.execute-api.{lab.region}.amazonaws.com/{stage}"


def _local_rest_api_url(lab: Lab, api: dict[str, Any], stage: str | None) -> str:
    """Locally: the loopback address of the REST API's listener, plus the stage."""
    if stage is None:
        raise ValueError("a REST API URL needs its stage, e.g. url_for(api, 'prod')")
    base = local_endpoints(lab).get("apigateway", {}).get("restapis", {}).get(api["id"])
    if base is None:
        raise LookupError(f"REST API {api['id']} is not served by the local cloud")
    return f"{base}/{stage}"


# A REST API (get_rest_api) has lowercase id and name, and rootResourceId; an HTTP API
# (helpers.apigatewayv2) has ApiEndpoint and ProtocolType instead.
URL_RESOLVERS = [
    UrlResolver(
        "rest-api",
        recognises=lambda api: "rootResourceId" in api or ("id" in api and "name" in api),
        builders={"aws": _aws_rest_api_url, "local": _local_rest_api_url},
    ),
]

# Nothing the course could delete calls an API: it goes first (functions wait for it).
RESOURCE_KINDS = [cleanup.ResourceKind(KIND, _find, _delete)]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`:
# https://aws.amazon.com/api-gateway/pricing/ (REST APIs, first 333 million a month).
PRICES = {
    "rest_api_million_requests": Price(3.50, "1M requests", "free tier: 1M calls/month, year 1"),
}
