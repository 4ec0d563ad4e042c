"""Errors the edge answers itself, in the wire format of the request's service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

import cbor2

from .. import protocols

_XML_PROTOCOLS = {"query", "ec2", "rest-xml"}
# JSON-protocol spelling of the edge's error codes (AWS JSON services name them so).
_JSON_CODES = {"SignatureDoesNotMatch": "InvalidSignatureException"}


class EdgeError(Exception):
    """A request the edge refuses before any service sees it: status, AWS error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def error_response(
    environ: Mapping[str, Any], signing_name: str | None, error: EdgeError
) -> tuple[int, dict[str, str], bytes]:
    """An edge error in the wire format of the request's service (XML, JSON or CBOR)."""
    request_id = str(uuid.uuid4())
    protocol = protocols.protocol_of(signing_name) if signing_name else None
    headers = {"x-amzn-RequestId": request_id}
    if environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        headers.update({"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"})
        body = {"__type": _json_code(error.code), "message": error.message}
        return error.status, headers, cbor2.dumps(body)
    wants_json = "HTTP_X_AMZ_TARGET" in environ or "json" in environ.get("CONTENT_TYPE", "")
    if protocol in _XML_PROTOCOLS or (protocol is None and not wants_json):
        fault = "Sender" if error.status < 500 else "Receiver"
        body_text = (
            f"<ErrorResponse><Error><Type>{fault}</Type><Code>{escape(error.code)}</Code>"
            f"<Message>{escape(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return error.status, {**headers, "Content-Type": "text/xml"}, body_text.encode()
    code = _json_code(error.code)
    headers.update({"x-amzn-ErrorType": code, "Content-Type": "application/json"})
    return error.status, headers, json.dumps({"__type": code, "message": error.message}).encode()


def _json_code(code: str) -> str:
    """The code as AWS's JSON protocols spell it ('IncompleteSignatureException')."""
    if code in _JSON_CODES:
        return _JSON_CODES[code]
    return code if code.endswith("Exception") or code == "InternalFailure" else code + "Exception"


def respond(
    start_response: Callable[..., Any],
    status: int,
    headers: dict[str, str],
    body: bytes,
    exc_info: Any = None,
) -> list[bytes]:
    """Start a WSGI response with a Content-Length and return its body."""
    headers = {**headers, "Content-Length": str(len(body))}
    start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()), exc_info)
    return [body]
