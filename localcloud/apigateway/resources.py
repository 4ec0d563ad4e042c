"""A REST API's deployed resource tree and request routing (pure functions).

AWS's rules (API Gateway developer guide, "Set up a proxy integration with a proxy resource",
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-set-up-simple-proxy.html):
a request path is matched segment by segment against the resource paths; a literal path part
wins over a `{param}` part, which wins over a greedy `{proxy+}` (it matches one or more
segments and must be the last part). On the matched resource, a method named like the
request's wins over `ANY`. When the most specific resource has neither, a less specific one
that has is used (the way a proxy resource catches what the others do not define). A
trailing slash is ignored. Path parameter values reach the integration URL-decoded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..apigatewayv2.routing import VARIABLE, match_template

ANY = "ANY"
_LITERAL, _PARAMETER, _GREEDY = 2, 1, 0


@dataclass(frozen=True)
class Resource:
    """One resource of a deployment: its path template and methods (name -> method dict)."""

    resource_id: str
    path: str
    methods: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def segments(self) -> tuple[str, ...]:
        """The path template's parts; the root `/` has none."""
        return tuple(self.path.strip("/").split("/")) if self.path.strip("/") else ()

    @property
    def greedy(self) -> bool:
        """True for a path ending in a greedy `{name+}` part."""
        found = VARIABLE.match(self.segments[-1]) if self.segments else None
        return bool(found and found.group(2))

    def rank(self) -> tuple[int, ...]:
        """Sort key, higher first: literal over parameter over greedy, left to right."""
        return tuple(_kind(part) for part in self.segments)


@dataclass(frozen=True)
class Deployment:
    """What CreateDeployment froze: the resource tree, most specific first, and API settings."""

    deployment_id: str
    api_name: str
    resources: tuple[Resource, ...]
    binary_media_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """The selected resource and method, and the request's path parameters."""

    resource: Resource
    method: dict[str, Any]  # the Method shape (httpMethod, methodIntegration ...)
    path_parameters: dict[str, str]

    @property
    def integration(self) -> dict[str, Any]:
        """The method's integration ({} when it has none)."""
        return self.method.get("methodIntegration") or {}


def deployment_of(
    deployment_id: str,
    api: Mapping[str, Any],
    items: Iterable[Mapping[str, Any]],
) -> Deployment:
    """A Deployment from GetRestApi and GetResources (with methods embedded)."""
    resources = [
        Resource(item["id"], item.get("path") or "/", dict(item.get("resourceMethods") or {}))
        for item in items
    ]
    resources.sort(key=lambda r: r.rank(), reverse=True)
    return Deployment(
        deployment_id,
        api.get("name") or "",
        tuple(resources),
        tuple(api.get("binaryMediaTypes") or ()),
    )


def select(deployment: Deployment, method: str, path: str) -> Match | None:
    """The most specific resource that matches the path and has the method (or ANY)."""
    segments = _segments(path)
    for resource in deployment.resources:
        chosen = resource.methods.get(method) or resource.methods.get(ANY)
        if chosen is None:
            continue
        parameters = _match(resource, segments)
        if parameters is not None:
            return Match(resource, chosen, parameters)
    return None


def source_arn(region: str, account_id: str, api_id: str, stage: str, match: Match) -> str:
    """The execute-api ARN an invocation comes from: `<api>/<stage>/<METHOD><resource path>`.

    The method is the one defined (ANY stays ANY) and the path the resource's template, as a
    Lambda permission's SourceArn names them
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/arn-format-reference.html).
    """
    method = match.method.get("httpMethod") or ANY
    return (
        f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}{match.resource.path}"
    )


def check_path_part(siblings: Iterable[str], path_part: str) -> str | None:
    """Why a new child path part conflicts with its siblings, or None (CreateResource rules)."""
    siblings = list(siblings)
    if path_part in siblings:
        return f"Another resource with the same parent already has this name: {path_part}"
    if _kind(path_part) != _LITERAL:
        taken = next((s for s in siblings if _kind(s) != _LITERAL), None)
        if taken is not None:
            return (
                f"A sibling ({taken}) of this resource already has a variable path part "
                "-- only one is allowed"
            )
    return None


def _kind(part: str) -> int:
    found = VARIABLE.match(part)
    if found is None:
        return _LITERAL
    return _GREEDY if found.group(2) else _PARAMETER


def _segments(path: str) -> list[str]:
    """A request path's raw segments; a trailing slash is ignored and `/` has none."""
    trimmed = path.strip("/") if path not in ("", "/") else ""
    return trimmed.split("/") if trimmed else []


def _match(resource: Resource, segments: list[str]) -> dict[str, str] | None:
    """Path parameters if the resource's template matches the segments, else None."""
    return match_template(resource.segments, resource.greedy, segments)
