"""Protocol names, SigV4 signing scope, botocore service look-ups and identify_operation."""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, NamedTuple
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel

from .request import AwsRequest, ServiceError

QUERY, JSON, CBOR, REST_JSON = "query", "json", "smithy-rpc-v2-cbor", "rest-json"
_CBOR_PATH = re.compile(r"/service/([^/]+)/operation/([^/]+)/?")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,]+)/([^/,]+)/aws4_request")
_LABEL = re.compile(r"\{([^}]+?)(\+?)\}")


class CredentialScope(NamedTuple):
    """The SigV4 credential scope of a request."""

    access_key: str
    date: str
    region: str
    service: str


def credential_scope(request: AwsRequest) -> CredentialScope | None:
    """The credential scope from the Authorization header or a presigned X-Amz-Credential."""
    match = _SCOPE.search(request.headers.get("Authorization") or "")
    if match:
        return CredentialScope(*match.groups())
    presigned = request.query.get("X-Amz-Credential")
    if presigned:
        parts = unquote(presigned[0]).split("/")
        if len(parts) == 5 and parts[4] == "aws4_request":
            return CredentialScope(*parts[:4])
    return None


def signing_service(request: AwsRequest) -> str | None:
    """The SigV4 signing name ('monitoring', 'lambda', 'dynamodb', ...) of a request."""
    scope = credential_scope(request)
    return scope.service if scope else None


@lru_cache(maxsize=1)
def _session() -> botocore.session.Session:
    """One botocore session: its loader caches the JSON models."""
    return botocore.session.get_session()


@cache
def service_model(service_name: str) -> ServiceModel:
    """botocore's model of a service (cached; building one costs milliseconds)."""
    return _session().get_service_model(service_name)


_signing_index: dict[str, list[str]] | None = None
_signing_lock = threading.Lock()


def service_names_for(signing_name: str) -> list[str]:
    """botocore service names that sign with this name ('dynamodb' -> dynamodb, dynamodbstreams)."""
    global _signing_index
    if _signing_index is None:
        with _signing_lock:
            if _signing_index is None:
                _signing_index = _build_signing_index()
    names = _signing_index.get(signing_name, [])
    # The service named like its signing name first: it is the likely one (rds before docdb).
    return sorted(names, key=lambda name: name != signing_name)


def _build_signing_index() -> dict[str, list[str]]:
    """Map every signing name to its services, reading only each model's metadata."""
    loader = _session().get_component("data_loader")
    index: dict[str, list[str]] = {}
    for name in loader.list_available_services("service-2"):
        metadata = _metadata_head(loader, name)
        if metadata is None:  # unusual layout: pay for the full model once
            metadata = loader.load_service_model(name, "service-2")["metadata"]
        signing = metadata.get("signingName") or metadata.get("endpointPrefix") or name
        index.setdefault(signing, []).append(name)
    return index


def _metadata_head(loader: Any, name: str) -> dict[str, Any] | None:
    """Decode only a model's leading "metadata" (0.1 s for all 400+ models; full loads take 3 s)."""
    try:
        version = loader.determine_latest_version(name, "service-2")
        for root in loader.search_paths:
            base = os.path.join(root, name, version, "service-2.json")
            for path, opener in ((base, open), (base + ".gz", gzip.open)):
                if os.path.isfile(path):
                    with opener(path, "rb") as handle:
                        head = handle.read(32768).decode("utf-8", "replace")
                    start = head.index("{", head.index('"metadata"'))
                    return json.JSONDecoder().raw_decode(head, start)[0]
    except (ValueError, OSError):
        return None
    return None


@dataclass
class Route:
    """One rest operation's request URI, compiled for matching."""

    operation: str
    method: str
    pattern: re.Pattern[str]
    labels: dict[str, str]  # regex group -> label name
    required_query: list[tuple[str, str | None]]
    rank: tuple[int, int, int]


@dataclass
class ServiceIndex:
    """Cheap look-ups from a request to an operation name, per protocol."""

    model: ServiceModel
    protocols: list[str]
    targets: dict[str, str]
    operations: set[str]
    routes: list[Route]
    # (method, path, query) -> the rest operation it identifies (or None), see _rest_operation
    rest_answers: dict[tuple[Any, ...], str | None] = field(default_factory=dict)
    route_of: dict[str, Route] = field(default_factory=dict)  # by operation name

    def __post_init__(self) -> None:
        self.route_of = {route.operation: route for route in self.routes}


@cache
def service_index(service_name: str) -> ServiceIndex:
    """Build (once per service) the indexes identify_operation needs."""
    model = service_model(service_name)
    protocols = list(model.metadata.get("protocols") or [model.metadata.get("protocol")])
    prefix = model.metadata.get("targetPrefix", "")
    names = set(model.operation_names)
    routes = []
    if REST_JSON in protocols:  # rest-xml (S3 style) is not served by course providers
        routes = [_compile_route(model.operation_model(n)) for n in names]
        routes.sort(key=lambda r: r.rank, reverse=True)
    return ServiceIndex(model, protocols, {f"{prefix}.{n}": n for n in names}, names, routes)


def _compile_route(op: OperationModel) -> Route:
    """Turn a requestUri like /2015-03-31/functions/{FunctionName}/invocations into a regex."""
    path, _, query = op.http.get("requestUri", "/").partition("?")
    labels: dict[str, str] = {}
    regex, literal, greedy, last = [], 0, 0, 0
    for i, match in enumerate(_LABEL.finditer(path)):
        regex.append(re.escape(path[last : match.start()]))
        literal += match.start() - last
        group = f"l{i}"
        labels[group] = match.group(1)
        greedy += bool(match.group(2))
        regex.append(f"(?P<{group}>.+)" if match.group(2) else f"(?P<{group}>[^/]+)")
        last = match.end()
    regex.append(re.escape(path[last:].rstrip("/")) + "/?")
    literal += len(path) - last
    required = [
        (k, v if sep else None) for k, sep, v in (p.partition("=") for p in query.split("&") if p)
    ]
    pattern = re.compile("".join(regex))
    # Most literal characters first, then fewer greedy labels, then more query constraints.
    return Route(
        op.name,
        op.http.get("method", "POST"),
        pattern,
        labels,
        required,
        (literal, -greedy, len(required)),
    )


def identify_operation(service_name: str, request: AwsRequest) -> tuple[OperationModel, str] | None:
    """Which operation of the service (and which protocol) this request is, or None."""
    index = service_index(service_name)
    headers = request.headers
    if CBOR in index.protocols and (headers.get("smithy-protocol") or "") == "rpc-v2-cbor":
        match = _CBOR_PATH.fullmatch(request.path)
        if match and match.group(2) in index.operations:
            return index.model.operation_model(match.group(2)), CBOR
        return None
    target = headers.get("X-Amz-Target")
    if target and JSON in index.protocols:
        name = index.targets.get(target)
        return (index.model.operation_model(name), JSON) if name else None
    if QUERY in index.protocols:
        try:
            action = request.form.get("Action")
        except ServiceError:  # an undecodable body: parse_request reports it if it gets there
            action = None
        if action in index.operations:
            return index.model.operation_model(action), QUERY
    if index.routes:
        name = _rest_operation(index, request)
        return (index.model.operation_model(name), REST_JSON) if name else None
    return None


_ROUTES_REMEMBERED = 4096  # distinct (method, path, query) answers kept per service


def _rest_operation(index: ServiceIndex, request: AwsRequest) -> str | None:
    """The rest operation whose route matches, remembered per method, path and query.

    The routes are tried in rank order with a regex each (a Lambda Invoke tried about 15);
    the answer depends on nothing else, and a client repeats the same few requests.
    """
    query = tuple(sorted((k, tuple(v)) for k, v in request.query.items()))
    key = (request.method, request.path, query)
    try:
        return index.rest_answers[key]
    except KeyError:
        pass
    name = next(
        (
            route.operation
            for route in index.routes
            if route.method == request.method and _route_match(route, request)
        ),
        None,
    )
    if len(request.path) + len(str(query)) <= 2048:  # a long request is not worth keeping
        if len(index.rest_answers) >= _ROUTES_REMEMBERED:
            index.rest_answers.clear()
        index.rest_answers[key] = name
    return name


def _route_match(route: Route, request: AwsRequest) -> re.Match[str] | None:
    """The path match of a route, if its literal query-string requirements hold too."""
    match = route.pattern.fullmatch(request.path)
    if match is None:
        return None
    for key, value in route.required_query:
        if key not in request.query or (value is not None and value not in request.query[key]):
            return None
    return match


@cache
def known_regions() -> frozenset[str]:
    """Every region of every partition botocore knows (what moto can hold state for)."""
    endpoints = _session().get_component("data_loader").load_data("endpoints")
    return frozenset(r for partition in endpoints["partitions"] for r in partition["regions"])


def protocol_of(signing_name: str) -> str | None:
    """The wire protocol of the first service signing with this name, or None if unknown."""
    names = service_names_for(signing_name)
    if not names:
        return None
    metadata = service_model(names[0]).metadata
    return (metadata.get("protocols") or [metadata.get("protocol")])[0]
