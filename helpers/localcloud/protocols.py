"""AWS wire protocols, driven by botocore's service models, for the local cloud's providers.

A provider works with plain dicts shaped like boto3's input and output. This module turns an
HTTP request into such a dict and a result dict (or a `ServiceError`) back into an HTTP
response that botocore's own parser accepts, for the protocols botocore speaks:

- ``query``: form-encoded ``Action=...`` requests, XML responses (RDS, ElastiCache, old CloudWatch);
- ``json``: ``X-Amz-Target`` requests, awsJson 1.0/1.1 (DynamoDB, Logs, CloudWatch);
- ``smithy-rpc-v2-cbor``: ``/service/<Svc>/operation/<Op>`` with CBOR bodies (CloudWatch);
- ``rest-json``: method + URI template, headers, query string, payload (Lambda, rds-data).

Not covered: ``rest-xml`` (S3 style), ``ec2``, event streams. Timestamps are returned as
ISO 8601 (query), epoch seconds (json) and CBOR tag 1 (cbor); headers use RFC 822. Services
with the ``awsQueryCompatible`` trait get an ``x-amzn-query-error`` header on errors so that
botocore reports the query-style error code (``InvalidParameterValue``) on every protocol.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import re
import threading
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache, cached_property, lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import botocore.session
import cbor2
from botocore.model import OperationModel, ServiceModel, Shape

QUERY, JSON, CBOR, REST_JSON = "query", "json", "smithy-rpc-v2-cbor", "rest-json"
_CBOR_PATH = re.compile(r"/service/([^/]+)/operation/([^/]+)/?")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,]+)/([^/,]+)/aws4_request")
_LABEL = re.compile(r"\{([^}]+?)(\+?)\}")


class CIHeaders(Mapping[str, str]):
    """A read-only, case-insensitive header mapping that keeps the original spelling."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        # botocore's prepared requests may carry bytes values; the wire is latin-1 text.
        self._items = {
            k.lower(): (k, v.decode("latin-1") if isinstance(v, bytes) else v)
            for k, v in (headers or {}).items()
        }

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class AwsRequest:
    """One HTTP request as the edge received it."""

    method: str
    path: str  # URL path, still percent-encoded
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        # Plain dicts are case-sensitive; header look-ups here must not be.
        if isinstance(self.headers, dict):
            self.headers = CIHeaders(self.headers)

    @classmethod
    def from_url(
        cls, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> AwsRequest:
        """Build a request from a path-with-query (or full URL) as botocore prepares it."""
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        return cls(method, parts.path or "/", query, headers, body)

    @cached_property
    def payload(self) -> bytes:
        """The body with any Content-Encoding (botocore gzips large PutMetricData) removed."""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if "gzip" in encoding and self.body:
                return gzip.decompress(self.body)
            if "deflate" in encoding and self.body:
                return zlib.decompress(self.body)
        except (OSError, EOFError, zlib.error) as error:
            raise ServiceError("SerializationException", f"Bad {encoding} body: {error}") from None
        return self.body

    @cached_property
    def form(self) -> dict[str, str]:
        """Query-string plus form-encoded body parameters, first value of each."""
        params = {k: v[0] for k, v in self.query.items() if v}
        content_type = (self.headers.get("Content-Type") or "").lower()
        if self.method != "GET" and (not content_type or "x-www-form-urlencoded" in content_type):
            text = self.payload.decode("utf-8", "replace")
            params.update({k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()})
        return params


class ServiceError(Exception):
    """An AWS error response: code (e.g. 'InvalidParameterValue'), message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, sender_fault: bool = True):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender_fault = sender_fault


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
class _Route:
    """One rest operation's request URI, compiled for matching."""

    operation: str
    method: str
    pattern: re.Pattern[str]
    labels: dict[str, str]  # regex group -> label name
    required_query: list[tuple[str, str | None]]
    rank: tuple[int, int, int]


@dataclass
class _ServiceIndex:
    """Cheap look-ups from a request to an operation name, per protocol."""

    model: ServiceModel
    protocols: list[str]
    targets: dict[str, str]
    operations: set[str]
    routes: list[_Route]


@cache
def _index(service_name: str) -> _ServiceIndex:
    """Build (once per service) the indexes identify_operation needs."""
    model = service_model(service_name)
    protocols = list(model.metadata.get("protocols") or [model.metadata.get("protocol")])
    prefix = model.metadata.get("targetPrefix", "")
    names = set(model.operation_names)
    routes = []
    if REST_JSON in protocols:  # rest-xml (S3 style) is not served by course providers
        routes = [_compile_route(model.operation_model(n)) for n in names]
        routes.sort(key=lambda r: r.rank, reverse=True)
    return _ServiceIndex(model, protocols, {f"{prefix}.{n}": n for n in names}, names, routes)


def _compile_route(op: OperationModel) -> _Route:
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
    return _Route(
        op.name,
        op.http.get("method", "POST"),
        pattern,
        labels,
        required,
        (literal, -greedy, len(required)),
    )


def identify_operation(service_name: str, request: AwsRequest) -> tuple[OperationModel, str] | None:
    """Which operation of the service (and which protocol) this request is, or None."""
    index = _index(service_name)
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
    for route in index.routes:
        if route.method == request.method and _route_match(route, request):
            return index.model.operation_model(route.operation), REST_JSON
    return None


def _route_match(route: _Route, request: AwsRequest) -> re.Match[str] | None:
    """The path match of a route, if its literal query-string requirements hold too."""
    match = route.pattern.fullmatch(request.path)
    if match is None:
        return None
    for key, value in route.required_query:
        if key not in request.query or (value is not None and value not in request.query[key]):
            return None
    return match


# ---------------------------------------------------------------------------- scalar helpers


def as_datetime(value: Any) -> datetime:
    """A UTC-aware datetime from a datetime, epoch seconds, ISO 8601 or RFC 822 text."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError):
        pass
    try:
        return as_datetime(datetime.fromisoformat(text))
    except ValueError:
        return as_datetime(parsedate_to_datetime(text))


def _epoch(value: Any) -> int | float:
    """Epoch seconds, an int when whole (as AWS sends them)."""
    seconds = as_datetime(value).timestamp()
    return int(seconds) if seconds.is_integer() else seconds


def _iso8601(value: Any) -> str:
    """ISO 8601 UTC with milliseconds, the query protocol's timestamp format."""
    moment = as_datetime(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _timestamp_out(shape: Shape, value: Any, default: str) -> Any:
    """A timestamp in the shape's declared format, or the protocol's default."""
    fmt = (shape.serialization.get("timestampFormat") or default).lower()
    if fmt == "iso8601":
        return _iso8601(value)
    if fmt == "rfc822":
        return format_datetime(as_datetime(value), usegmt=True)
    return _epoch(value)


def _float_out(value: float) -> float | str:
    """Floats for JSON bodies: non-finite values travel as strings."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _text_out(shape: Shape, value: Any) -> str:
    """A scalar as text for XML bodies, headers, and query strings."""
    kind = shape.type_name
    if kind == "timestamp":
        return str(_timestamp_out(shape, value, "iso8601"))
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("float", "double"):
        out = _float_out(value)
        return out if isinstance(out, str) else repr(out)
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode()
    return str(value)


def _text_in(shape: Shape, text: str) -> Any:
    """A scalar from text (query form values, URI labels, query-string values)."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(text)
    if kind in ("float", "double"):
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "timestamp":
        return as_datetime(text)
    if kind == "blob":
        return base64.b64decode(text)
    return text


# ---------------------------------------------------------------------------- request parsing


def parse_request(operation_model: OperationModel, protocol: str, request: AwsRequest) -> dict:
    """The request's parameters as boto3 would take them (datetimes, bytes, typed numbers)."""
    shape = operation_model.input_shape
    if shape is None:
        return {}
    try:
        if protocol == QUERY:
            flat = {k: v for k, v in request.form.items() if k not in ("Action", "Version")}
            return _from_query(shape, _trie(flat)) or {}
        if protocol == JSON:
            body = request.payload
            return _from_doc(shape, json.loads(body) if body.strip() else {}, by_wire_name=True)
        if protocol == CBOR:
            body = request.payload
            return _from_doc(shape, cbor2.loads(body) if body else {}, by_wire_name=False)
        if protocol == REST_JSON:
            return _from_rest(operation_model, shape, request)
    except (ValueError, TypeError, KeyError, cbor2.CBORDecodeError) as error:
        code = "MalformedQueryString" if protocol == QUERY else "SerializationException"
        raise ServiceError(code, f"Could not parse the request: {error}") from error
    raise ValueError(f"unsupported protocol {protocol!r}")


class _Node:
    """A node of the dotted-key tree built from query parameters (MetricData.member.1.Value)."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.value: str | None = None


def _trie(flat: Mapping[str, str]) -> _Node:
    """Arrange flat query keys as a tree, so each list walk is linear."""
    root = _Node()
    for key, value in flat.items():
        node = root
        for part in key.split("."):
            node = node.children.setdefault(part, _Node())
        node.value = value
    return root


def _query_member_key(member: Shape, name: str) -> str:
    """The query key of a structure member (flattened named lists use the item name)."""
    if member.type_name == "list" and member.serialization.get("flattened"):
        return member.member.serialization.get("name") or member.serialization.get("name", name)
    return member.serialization.get("name", name)


def _indexed(node: _Node | None) -> list[_Node]:
    """Children named 1, 2, 3, ... in numeric order."""
    if node is None:
        return []
    items = [(int(k), child) for k, child in node.children.items() if k.isdigit()]
    return [child for _, child in sorted(items, key=lambda item: item[0])]


def _from_query(shape: Shape, node: _Node) -> Any:
    """Rebuild a value from the query protocol's Member.N / entry.N.key form."""
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            child = node.children.get(_query_member_key(member, name))
            if child is not None:
                out[name] = _from_query(member, child)
        return out
    if kind == "list":
        if shape.serialization.get("flattened"):
            items = _indexed(node)
        else:
            items = _indexed(node.children.get(shape.member.serialization.get("name", "member")))
        return [_from_query(shape.member, item) for item in items]
    if kind == "map":
        entries = _indexed(
            node if shape.serialization.get("flattened") else node.children.get("entry")
        )
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        return {
            entry.children[key_name].value: _from_query(shape.value, entry.children[value_name])
            for entry in entries
            if key_name in entry.children and value_name in entry.children
        }
    return _text_in(shape, node.value or "")


def _from_doc(shape: Shape, value: Any, by_wire_name: bool) -> Any:
    """Convert a decoded JSON or CBOR document into boto3's Python types following the shape."""
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name) if by_wire_name else name
            raw = value.get(key, value.get(name))
            if raw is not None:
                out[name] = _from_doc(member, raw, by_wire_name)
        return out
    if kind == "list":
        return [_from_doc(shape.member, item, by_wire_name) for item in value]
    if kind == "map":
        return {k: _from_doc(shape.value, v, by_wire_name) for k, v in value.items()}
    if kind == "timestamp":
        return as_datetime(value)
    if kind == "blob":
        return bytes(value) if isinstance(value, bytes | bytearray) else base64.b64decode(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    return value


def _from_rest(op: OperationModel, shape: Shape, request: AwsRequest) -> dict:
    """Collect rest-json parameters from URI labels, query string, headers and body."""
    routes = _index(op.service_model.service_name).routes
    route = next((r for r in routes if r.operation == op.name), None)
    match = route.pattern.fullmatch(request.path) if route else None
    labels = {route.labels[g]: unquote(v) for g, v in match.groupdict().items()} if match else {}
    out: dict[str, Any] = {}
    claimed = {
        m.serialization.get("name", n)
        for n, m in shape.members.items()
        if m.serialization.get("location") == "querystring"
    }
    payload_name = shape.serialization.get("payload")
    body_members = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                out[name] = _text_in(member, labels[wire])
        elif location == "querystring":
            if member.type_name == "map":
                rest = {k: v for k, v in request.query.items() if k not in claimed}
                if rest:
                    as_list = member.value.type_name == "list"
                    out[name] = {k: (v if as_list else v[0]) for k, v in rest.items()}
            elif wire in request.query:
                values = request.query[wire]
                if member.type_name == "list":
                    out[name] = [_text_in(member.member, v) for v in values]
                else:
                    out[name] = _text_in(member, values[0])
        elif location == "header":
            text = request.headers.get(wire)
            if text is not None:
                out[name] = _header_in(member, text)
        elif location == "headers":
            prefix = wire.lower()
            found = {
                k[len(prefix) :]: v
                for k, v in request.headers.items()
                if k.lower().startswith(prefix)
            }
            if found:
                out[name] = found
        elif name != payload_name:
            body_members[name] = member
    body = request.payload
    if payload_name:
        member = shape.members[payload_name]
        if member.type_name == "blob":
            if body:
                out[payload_name] = body
        elif member.type_name == "string":
            if body:
                out[payload_name] = body.decode("utf-8")
        elif body.strip():
            out[payload_name] = _from_doc(member, json.loads(body), by_wire_name=True)
    elif body_members and body.strip():
        document = json.loads(body)
        for name, member in body_members.items():
            raw = document.get(member.serialization.get("name", name))
            if raw is not None:
                out[name] = _from_doc(member, raw, by_wire_name=True)
    return out


def _header_in(shape: Shape, text: str) -> Any:
    """A header value into its Python type (RFC 822 dates, base64 JSON, comma lists)."""
    if shape.type_name == "list":
        return [_header_in(shape.member, part.strip().strip('"')) for part in text.split(",")]
    if shape.serialization.get("jsonvalue"):
        return json.loads(base64.b64decode(text))
    return _text_in(shape, text)


# ---------------------------------------------------------------------------- responses


def serialize_response(
    operation_model: OperationModel, protocol: str, result: dict, *, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a successful response in the request's protocol."""
    request_id = request_id or str(uuid.uuid4())
    shape = operation_model.output_shape
    headers = {"x-amzn-RequestId": request_id}
    if protocol == QUERY:
        return (
            200,
            {**headers, "Content-Type": "text/xml"},
            _query_body(operation_model, result, request_id),
        )
    if protocol == JSON:
        version = operation_model.metadata.get("jsonVersion", "1.0")
        document = _to_doc(shape, result, by_wire_name=True) if shape is not None else {}
        headers["Content-Type"] = f"application/x-amz-json-{version}"
        return 200, headers, json.dumps(document).encode()
    if protocol == CBOR:
        headers["smithy-protocol"] = "rpc-v2-cbor"
        if shape is None:  # Smithy RPC v2: no output shape, no body
            return 200, headers, b""
        headers["Content-Type"] = "application/cbor"
        return 200, headers, cbor2.dumps(_to_doc(shape, result, by_wire_name=False))
    if protocol == REST_JSON:
        return _rest_response(operation_model, result, headers)
    raise ValueError(f"unsupported protocol {protocol!r}")


def _to_doc(shape: Shape, value: Any, by_wire_name: bool) -> Any:
    """A result value as a JSON document (by_wire_name) or a CBOR document."""
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        out = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                key = member.serialization.get("name", name) if by_wire_name else name
                out[key] = _to_doc(member, item, by_wire_name)
        return out
    if kind == "list":
        return [_to_doc(shape.member, item, by_wire_name) for item in value]
    if kind == "map":
        return {k: _to_doc(shape.value, v, by_wire_name) for k, v in value.items()}
    if kind == "timestamp":
        if by_wire_name:
            return _timestamp_out(shape, value, "unixtimestamp")
        return cbor2.CBORTag(1, _epoch(value))
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode() if by_wire_name else raw
    if kind in ("float", "double"):
        return _float_out(value) if by_wire_name else float(value)
    if kind in ("integer", "long"):
        return int(value)
    return value


def _query_body(op: OperationModel, result: dict, request_id: str) -> bytes:
    """The XML document of a query-protocol response."""
    namespace = op.metadata.get("xmlNamespace", "")
    parts = [f'<{op.name}Response xmlns="{escape(namespace)}">']
    shape = op.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper")
        parts.append(f"<{wrapper}>" if wrapper else "")
        _xml_members(shape, result, parts)
        parts.append(f"</{wrapper}>" if wrapper else "")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>")
    parts.append(f"</{op.name}Response>")
    return "".join(parts).encode()


def _xml_members(shape: Shape, value: Mapping[str, Any], parts: list[str]) -> None:
    """Append a structure's members as XML elements."""
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _xml_value(member, item, _query_member_key(member, name), parts)


def _xml_value(shape: Shape, value: Any, tag: str, parts: list[str]) -> None:
    """Append one value as XML in the query protocol's layout."""
    kind = shape.type_name
    if kind == "structure":
        parts.append(f"<{tag}>")
        _xml_members(shape, value, parts)
        parts.append(f"</{tag}>")
    elif kind == "list":
        if shape.serialization.get("flattened"):
            for item in value:
                _xml_value(shape.member, item, tag, parts)
            return
        parts.append(f"<{tag}>")
        item_tag = shape.member.serialization.get("name", "member")
        for item in value:
            _xml_value(shape.member, item, item_tag, parts)
        parts.append(f"</{tag}>")
    elif kind == "map":
        flattened = shape.serialization.get("flattened")
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        parts.append("" if flattened else f"<{tag}>")
        for key, item in value.items():
            parts.append(
                f"<{tag if flattened else 'entry'}><{key_tag}>{escape(str(key))}</{key_tag}>"
            )
            _xml_value(shape.value, item, value_tag, parts)
            parts.append(f"</{tag if flattened else 'entry'}>")
        parts.append("" if flattened else f"</{tag}>")
    else:
        parts.append(f"<{tag}>{escape(_text_out(shape, value))}</{tag}>")


def _rest_response(
    op: OperationModel, result: dict, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """A rest-json response: status code, header members, payload or JSON body."""
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    if shape is None:
        return status, headers, b""
    payload_name = shape.serialization.get("payload")
    document: dict[str, Any] = {}
    has_body_members = False
    body = b""
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        has_body_members |= location is None and name != payload_name
        value = result.get(name)
        if value is None:
            continue
        if location == "statusCode":
            status = int(value)
        elif location == "header":
            headers[wire] = _header_out(member, value)
        elif location == "headers":
            headers.update({wire + k: str(v) for k, v in value.items()})
        elif name == payload_name:
            if member.type_name == "blob":
                body = value.encode() if isinstance(value, str) else bytes(value)
                headers.setdefault("Content-Type", "application/octet-stream")
            elif member.type_name == "string":
                body = str(value).encode()
                headers.setdefault("Content-Type", "text/plain")
            else:
                body = json.dumps(_to_doc(member, value, by_wire_name=True)).encode()
                headers.setdefault("Content-Type", "application/json")
        elif location is None:
            document[wire] = _to_doc(member, value, by_wire_name=True)
    if not payload_name and has_body_members:
        body = json.dumps(document).encode()
        headers["Content-Type"] = "application/json"
    return status, headers, body


def _header_out(shape: Shape, value: Any) -> str:
    """A header member as text (RFC 822 dates, base64 JSON values, comma lists)."""
    if shape.type_name == "list":
        return ",".join(_header_out(shape.member, item) for item in value)
    if shape.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    if shape.type_name == "timestamp":
        return str(_timestamp_out(shape, value, "rfc822"))
    return _text_out(shape, value)


@cache
def _error_names(service_name: str) -> dict[str, tuple[str, str]]:
    """Error code or shape name -> (shape name, query-style code), from the model."""
    names: dict[str, tuple[str, str]] = {}
    for shape in service_model(service_name).error_shapes:
        code = shape.metadata.get("error", {}).get("code", shape.name)
        names.setdefault(code, (shape.name, code))
        names[shape.name] = (shape.name, code)
    return names


def serialize_error(
    service_model: ServiceModel,
    protocol: str,
    error: ServiceError,
    *,
    request_id: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an error response that botocore parses into error.code."""
    request_id = request_id or str(uuid.uuid4())
    type_name, query_code = _error_names(service_model.service_name).get(
        error.code, (error.code, error.code)
    )
    fault = "Sender" if error.sender_fault else "Receiver"
    headers = {"x-amzn-RequestId": request_id}
    if "awsQueryCompatible" in service_model.metadata:
        # botocore swaps __type for this code, so callers see the same code on every protocol.
        headers["x-amzn-query-error"] = f"{query_code};{fault}"
    if protocol == QUERY:
        namespace = escape(service_model.metadata.get("xmlNamespace", ""))
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type>'
            f"<Code>{escape(query_code)}</Code><Message>{escape(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers.pop("x-amzn-query-error", None)
        return error.status, {**headers, "Content-Type": "text/xml"}, body.encode()
    if protocol == JSON:
        version = service_model.metadata.get("jsonVersion", "1.0")
        headers["Content-Type"] = f"application/x-amz-json-{version}"
        return (
            error.status,
            headers,
            json.dumps({"__type": type_name, "message": error.message}).encode(),
        )
    if protocol == CBOR:
        headers.update({"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"})
        return error.status, headers, cbor2.dumps({"__type": type_name, "message": error.message})
    if protocol == REST_JSON:
        headers.update({"x-amzn-ErrorType": type_name, "Content-Type": "application/json"})
        # Lambda-style body; botocore reads the code from the header and either message key.
        document = {"Type": "User" if error.sender_fault else "Service", "message": error.message}
        return error.status, headers, json.dumps(document).encode()
    raise ValueError(f"unsupported protocol {protocol!r}")
