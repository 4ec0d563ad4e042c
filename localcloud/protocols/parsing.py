"""Request parsing per protocol: query, json, CBOR and rest-json into boto3-style dicts."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import cbor2
from botocore.model import OperationModel, Shape

from .request import AwsRequest
from .routing import CBOR, JSON, QUERY, REST_JSON, service_index
from .shapes import as_datetime, query_member_key, text_in
from .validation import ShapeMismatch, parse_error, type_error


def parse_request(operation_model: OperationModel, protocol: str, request: AwsRequest) -> dict:
    """The request's parameters as boto3 would take them (datetimes, bytes, typed numbers).

    A member of the wrong JSON type is refused here; the model's other constraints are
    checked by `check_constraints`.
    """
    shape = operation_model.input_shape
    if shape is None:
        return {}
    try:
        params = _parse(operation_model, shape, protocol, request)
    except ShapeMismatch as mismatch:
        raise type_error(operation_model, protocol, mismatch) from None
    except (ValueError, TypeError, KeyError, cbor2.CBORDecodeError) as error:
        raise parse_error(operation_model, protocol, str(error)) from error
    return params


def _parse(op: OperationModel, shape: Shape, protocol: str, request: AwsRequest) -> dict:
    """Decode the request by its protocol's rules."""
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
        return _from_rest(op, shape, request)
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
            child = node.children.get(query_member_key(member, name))
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
    return text_in(shape, node.value or "")


# The JSON/CBOR types each scalar shape takes (bool is an int in Python: excluded below).
_DOC_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float, str),  # AWS JSON sends NaN and Infinity as strings
    "double": (int, float, str),
    "timestamp": (int, float, str, datetime),
    "blob": (str, bytes, bytearray),
}
_EXPECTED = {"structure": "an object", "list": "a list", "map": "an object"}


def _from_doc(shape: Shape, value: Any, by_wire_name: bool) -> Any:
    """Convert a decoded JSON or CBOR document into boto3's Python types following the shape."""
    kind = shape.type_name
    _check_type(shape, value)
    if kind == "structure":
        if shape.is_document_type:
            return value
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name) if by_wire_name else name
            raw = value.get(key, value.get(name))
            if raw is not None:
                try:
                    out[name] = _from_doc(member, raw, by_wire_name)
                except ShapeMismatch as mismatch:
                    raise mismatch.within(key) from None
        return out
    if kind == "list":
        return [_item(shape.member, item, f"[{i}]", by_wire_name) for i, item in enumerate(value)]
    if kind == "map":
        return {k: _item(shape.value, v, f"[{k!r}]", by_wire_name) for k, v in value.items()}
    if kind == "timestamp":
        return as_datetime(value)
    if kind == "blob":
        return bytes(value) if isinstance(value, bytes | bytearray) else base64.b64decode(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    return value


def _item(shape: Shape, value: Any, where: str, by_wire_name: bool) -> Any:
    """One list item or map value, with its position in a mismatch's path."""
    try:
        return _from_doc(shape, value, by_wire_name)
    except ShapeMismatch as mismatch:
        raise mismatch.within(where) from None


def _check_type(shape: Shape, value: Any) -> None:
    """Refuse a document value of the wrong JSON type for its shape ("false" for a boolean)."""
    kind = shape.type_name
    if kind in _EXPECTED:
        if kind == "structure" and shape.is_document_type:
            return
        wanted: tuple[type, ...] = (list,) if kind == "list" else (dict,)
        if not isinstance(value, wanted):
            raise ShapeMismatch("", _EXPECTED[kind], value)
        return
    accepted = _DOC_TYPES.get(kind)
    if accepted is None:
        return
    if not isinstance(value, accepted) or (kind != "boolean" and isinstance(value, bool)):
        raise ShapeMismatch("", f"a {kind}", value)


def _from_rest(op: OperationModel, shape: Shape, request: AwsRequest) -> dict:
    """Collect rest-json parameters from URI labels, query string, headers and body."""
    route = service_index(op.service_model.service_name).route_of.get(op.name)
    match = route.pattern.fullmatch(request.path) if route else None
    labels = {route.labels[g]: unquote(v) for g, v in match.groupdict().items()} if match else {}
    out: dict[str, Any] = {}
    claimed = _query_names(shape)
    payload_name = shape.serialization.get("payload")
    body_members = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                out[name] = text_in(member, labels[wire])
        elif location == "querystring":
            if member.type_name == "map":
                rest = {k: v for k, v in request.query.items() if k not in claimed}
                if rest:
                    as_list = member.value.type_name == "list"
                    out[name] = {k: (v if as_list else v[0]) for k, v in rest.items()}
            elif wire in request.query:
                values = request.query[wire]
                if member.type_name == "list":
                    out[name] = [text_in(member.member, v) for v in values]
                else:
                    out[name] = text_in(member, values[0])
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
        if not isinstance(document, dict):
            raise ShapeMismatch("", "an object", document)
        for name, member in body_members.items():
            wire = member.serialization.get("name", name)
            if document.get(wire) is not None:
                try:
                    out[name] = _from_doc(member, document[wire], by_wire_name=True)
                except ShapeMismatch as mismatch:
                    raise mismatch.within(wire) from None
    return out


@functools.cache  # botocore's shapes are built once per service model and never change
def _query_names(shape: Shape) -> frozenset[str]:
    """The query-string names of the input shape's members (the rest go to a map member)."""
    return frozenset(
        m.serialization.get("name", n)
        for n, m in shape.members.items()
        if m.serialization.get("location") == "querystring"
    )


def _header_in(shape: Shape, text: str) -> Any:
    """A header value into its Python type (RFC 822 dates, base64 JSON, comma lists)."""
    if shape.type_name == "list":
        return [_header_in(shape.member, part.strip().strip('"')) for part in text.split(",")]
    if shape.serialization.get("jsonvalue"):
        return json.loads(base64.b64decode(text))
    return text_in(shape, text)
