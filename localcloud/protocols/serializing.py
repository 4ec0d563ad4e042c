"""Response and error serialising per protocol, in a form botocore's parsers accept."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

import cbor2
from botocore.model import OperationModel, ServiceModel, Shape

from .request import ServiceError
from .routing import CBOR, JSON, QUERY, REST_JSON, service_model
from .shapes import epoch_seconds, float_out, query_member_key, text_out, timestamp_out


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
            return timestamp_out(shape, value, "unixtimestamp")
        return cbor2.CBORTag(1, epoch_seconds(value))
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode() if by_wire_name else raw
    if kind in ("float", "double"):
        return float_out(value) if by_wire_name else float(value)
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
            _xml_value(member, item, query_member_key(member, name), parts)


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
        parts.append(f"<{tag}>{escape(text_out(shape, value))}</{tag}>")


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
        return str(timestamp_out(shape, value, "rfc822"))
    return text_out(shape, value)


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
            json.dumps({"__type": type_name, "message": error.message, **error.fields}).encode(),
        )
    if protocol == CBOR:
        headers.update({"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"})
        return error.status, headers, cbor2.dumps({"__type": type_name, "message": error.message})
    if protocol == REST_JSON:
        headers.update({"x-amzn-ErrorType": type_name, "Content-Type": "application/json"})
        # Lambda-style body; botocore reads the code from the header and either message key.
        document = {"Type": "User" if error.sender_fault else "Service", "message": error.message}
        document |= error.fields
        return error.status, headers, json.dumps(document).encode()
    raise ValueError(f"unsupported protocol {protocol!r}")
