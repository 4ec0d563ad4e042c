"""The edge: the local cloud's single HTTP endpoint, dispatching each AWS request.

Every request is looked at once: the SigV4 credential scope names the service and region;
only when a course provider exists for that service is the operation identified (by the
protocol's rules) and, if the provider defines it, served there. Everything else, including
every request for services without a provider, goes to moto unchanged. Paths under
`/_localcloud/` are the daemon's own control API (health, status, reset, shutdown).

Before any of that, the edge refuses what AWS would refuse at its front door, with AWS's
codes (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html):
- a request from a web page or a foreign host name (an `Origin` or `Sec-Fetch-Site` of
  another site, a `Host` that is not a loopback name with the daemon's port, as after DNS
  rebinding): 403 AccessDenied;
- no `Authorization` header and no presigned `X-Amz-Credential`: 403
  MissingAuthenticationToken; an `Authorization` header without a SigV4 credential scope:
  400 IncompleteSignature; a scope naming a service or region botocore does not know: 403
  SignatureDoesNotMatch ("Credential should be scoped to a valid region");
- a body that is not framed correctly (a Content-Length that is not a number, a bad chunk
  size, both Content-Length and chunked, a body shorter than declared): 400 BadRequest or
  IncompleteBody; a body not received within BODY_DEADLINE_S: 400 RequestTimeout;
- a body over AWS's request size limit: 413. Lambda Invoke takes 6 MB
  (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), other Lambda
  calls about 70 MB (a 50 MB zip, base64 in JSON); every other request up to
  LOCALCLOUD_MAX_BODY_BYTES (default 32 MiB), where AWS allows more for some services
  (S3 PutObject takes 5 GB). Bodies are read in pieces up to the limit, never trusting a
  declared size, so one request never holds more memory than its limit.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import os
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import cbor2
from botocore.model import OperationModel
from werkzeug.datastructures import EnvironHeaders
from werkzeug.serving import DechunkedInput

from . import protocols
from .config import FAKE_ACCOUNT_ID
from .motogateway import MotoGateway
from .registry import Provider, Registry, RequestContext

log = logging.getLogger("localcloud.edge")

CONTROL_PREFIX = "/_localcloud/"
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/aws4_request")

ControlHandler = Callable[[str, bytes], tuple[int, Any]]
# (call name, method, headers) -> a refusal (status, JSON payload), or None to let it through
ControlGuard = Callable[[str, str, Mapping[str, str]], tuple[int, Any] | None]

BODY_DEADLINE_S = 30.0  # the whole body must arrive within this, however it trickles
BODY_IDLE_S = 10.0  # and no single read may wait longer than this
DEFAULT_BODY_LIMIT = int(os.environ.get("LOCALCLOUD_MAX_BODY_BYTES", 32 * 1024 * 1024))
CONTROL_BODY_LIMIT = 64 * 1024
INVOKE_BODY_LIMIT = 6 * 1024 * 1024  # 6291456 bytes, synchronous Invoke
LAMBDA_BODY_LIMIT = 70_167_211  # AWS's limit for UpdateFunctionCode, the largest Lambda call
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/[^/]+/invocations/?")
_READ_SIZE = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
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


class Edge:
    """WSGI app: providers first, moto otherwise, control API under /_localcloud/."""

    def __init__(
        self,
        registry: Registry,
        moto: MotoGateway,
        control: ControlHandler,
        guard: ControlGuard | None = None,
    ) -> None:
        self.registry = registry
        self.moto = moto
        self.control = control
        self.guard = guard
        self._candidates: dict[str, list[str]] = {}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._serve_control(environ, path[len(CONTROL_PREFIX) :], start_response)
        signing_name = None
        try:
            check_caller(environ)
            region, signing_name = signing_scope(environ)
            body = read_body(environ, body_limit(signing_name, path))
        except EdgeError as error:
            status, headers, payload = error_response(environ, signing_name, error)
            return _respond(start_response, status, headers, payload)
        served = self._serve_by_provider(environ, region, signing_name, body, start_response)
        if served is not None:
            return served
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            return self.moto.serve(environ, start_response)
        except Exception:  # a moto bug must still answer like AWS does, not with an HTML page
            log.error("moto failed on %s %s:\n%s", signing_name, path, traceback.format_exc())
            failure = EdgeError(500, "InternalFailure", "The request processing has failed.")
            status, headers, payload = error_response(environ, signing_name, failure)
            return _respond(start_response, status, headers, payload, sys.exc_info())

    def _serve_control(
        self, environ: dict[str, Any], name: str, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The daemon's control API, behind the caller checks and the guard."""
        try:
            check_caller(environ)
            answer = None  # the guard's refusal, or else the control call's answer
            if self.guard is not None:
                answer = self.guard(name, environ["REQUEST_METHOD"], EnvironHeaders(environ))
            if answer is None:
                answer = self.control(name, read_body(environ, CONTROL_BODY_LIMIT))
            status, payload = answer
        except EdgeError as error:
            status, payload = error.status, {"error": error.message, "code": error.code}
        return _respond(
            start_response,
            status,
            {"Content-Type": "application/json"},
            json.dumps(payload, default=str).encode(),
        )

    def _serve_by_provider(
        self,
        environ: dict[str, Any],
        region: str,
        signing_name: str,
        body: bytes,
        start_response: Callable[..., Any],
    ) -> Iterable[bytes] | None:
        """Serve the request with a course provider, or return None to fall through to moto."""
        services = self._provider_services(signing_name)
        if not services:
            return None
        request = protocols.AwsRequest(
            method=environ["REQUEST_METHOD"],
            path=_raw_path(environ),
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers=EnvironHeaders(environ),
            body=body,
        )
        for service in services:
            identified = protocols.identify_operation(service, request)
            if identified is None:
                continue
            operation, protocol = identified
            provider = self.registry.find(service, operation.name)
            if provider is None:
                return None
            context = RequestContext(region=region, account_id=FAKE_ACCOUNT_ID)
            status, headers, payload = self._call(provider, operation, protocol, request, context)
            return _respond(start_response, status, headers, payload)
        return None

    def _provider_services(self, signing_name: str) -> list[str]:
        """Services signed with this name that have a provider (cached)."""
        try:
            return self._candidates[signing_name]
        except KeyError:
            found = [
                s for s in protocols.service_names_for(signing_name) if s in self.registry.services
            ]
            self._candidates[signing_name] = found
            return found

    @staticmethod
    def _call(
        provider: Provider,
        operation: OperationModel,
        protocol: str,
        request: protocols.AwsRequest,
        context: RequestContext,
    ) -> tuple[int, dict[str, str], bytes]:
        """Run one provider operation and serialise its result or its error."""
        try:
            params = protocols.parse_request(operation, protocol, request)
            protocols.check_constraints(operation, protocol, params)
            result = getattr(provider, operation.name)(params, context)
            return protocols.serialize_response(
                operation, protocol, result or {}, request_id=context.request_id
            )
        except protocols.ServiceError as error:
            return protocols.serialize_error(
                operation.service_model, protocol, error, request_id=context.request_id
            )
        except Exception as error:  # a provider bug must still answer like AWS does
            log.error(
                "provider %s.%s failed:\n%s",
                provider.service,
                operation.name,
                traceback.format_exc(),
            )
            failure = protocols.ServiceError(
                "InternalFailure", f"{type(error).__name__}: {error}", 500, sender_fault=False
            )
            return protocols.serialize_error(
                operation.service_model, protocol, failure, request_id=context.request_id
            )


def check_caller(environ: Mapping[str, Any]) -> None:
    """Refuse web pages (Origin, Sec-Fetch-Site) and foreign Host names (DNS rebinding)."""
    host = environ.get("HTTP_HOST")
    if not host or not _is_own_authority(host, str(environ.get("SERVER_PORT", ""))):
        raise EdgeError(403, "AccessDenied", f"Host {host!r} is not this local cloud's address.")
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        parts = urlsplit(origin)
        own = parts.scheme == "http" and _is_own_authority(parts.netloc, environ["SERVER_PORT"])
        if not own:
            raise EdgeError(403, "AccessDenied", f"Requests from {origin!r} are not accepted.")
    # Browsers send this even where they leave out Origin; SDKs and curl never send it.
    if environ.get("HTTP_SEC_FETCH_SITE", "same-origin") not in ("same-origin", "none"):
        raise EdgeError(403, "AccessDenied", "Requests from other sites are not accepted.")


def _is_own_authority(authority: str, port: str) -> bool:
    """True for a loopback name or address with the daemon's port ('127.0.0.1:4766')."""
    host, _, given_port = authority.rpartition(":")
    if given_port != port or not host:
        return False
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def signing_scope(environ: Mapping[str, Any]) -> tuple[str, str]:
    """Region and signing name of a SigV4 request, or the error AWS answers without one."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization:
        match = _SCOPE.search(authorization)
        if match is None:
            raise EdgeError(
                400,
                "IncompleteSignature",
                "Authorization header requires a SigV4 'Credential' parameter "
                "(Credential=<key>/<date>/<region>/<service>/aws4_request).",
            )
        region, service = match.groups()
    else:
        presigned = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
        parts = unquote(presigned).split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise EdgeError(403, "MissingAuthenticationToken", "Missing Authentication Token")
        region, service = parts[2], parts[3]
    if not protocols.service_names_for(service):
        raise EdgeError(
            403,
            "SignatureDoesNotMatch",
            f"Credential should be scoped to a valid service, not {service!r}.",
        )
    if region not in protocols.known_regions():
        raise EdgeError(
            403,
            "SignatureDoesNotMatch",
            f"Credential should be scoped to a valid region, not {region!r}.",
        )
    return region, service


def body_limit(signing_name: str, path: str) -> int:
    """The largest body AWS accepts for this request (see the module docstring)."""
    if signing_name == "lambda":
        return INVOKE_BODY_LIMIT if _INVOKE_PATH.fullmatch(path) else LAMBDA_BODY_LIMIT
    return DEFAULT_BODY_LIMIT


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, length-delimited or chunked, bounded by `limit` and a deadline."""
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH", "").strip()
    chunked = environ.get("HTTP_TRANSFER_ENCODING") is not None
    if chunked and environ["HTTP_TRANSFER_ENCODING"].strip().lower() != "chunked":
        raise EdgeError(400, "BadRequest", "Only Transfer-Encoding: chunked is supported.")
    if chunked and length_text:
        raise EdgeError(400, "BadRequest", "Content-Length and Transfer-Encoding together.")
    reader = _Reader(stream, environ.get("werkzeug.socket"))
    if isinstance(stream, DechunkedInput):
        # werkzeug's dechunker trusts chunk sizes and counts empty reads at EOF as data.
        reader.stream = stream._rfile
        return _read_chunked(reader, limit)
    if length_text:
        if not length_text.isdigit():
            raise EdgeError(400, "BadRequest", f"Invalid Content-Length {length_text!r}.")
        length = int(length_text)
        if length > limit:
            raise _too_large(limit)
        return reader.exactly(length)
    if environ.get("wsgi.input_terminated"):  # a server that dechunked already
        data = reader.up_to(limit + 1)
        if len(data) > limit:
            raise _too_large(limit)
        return data
    return b""


class _Reader:
    """Reads from the request stream in pieces, with an idle timeout and a deadline."""

    def __init__(self, stream: Any, sock: Any) -> None:
        self.stream = stream
        self.deadline = time.monotonic() + BODY_DEADLINE_S
        if sock is not None:
            # Stays set: werkzeug's drain after the response must not wait forever either.
            sock.settimeout(BODY_IDLE_S)

    def _read(self, size: int, line: bool = False) -> bytes:
        if time.monotonic() > self.deadline:
            raise _timeout()
        try:
            return self.stream.readline(size) if line else self.stream.read(size)
        except TimeoutError:
            raise _timeout() from None

    def exactly(self, length: int) -> bytes:
        """`length` bytes; IncompleteBody if the stream ends first."""
        parts, remaining = [], length
        while remaining:
            piece = self._read(min(remaining, _READ_SIZE))
            if not piece:
                raise EdgeError(
                    400,
                    "IncompleteBody",
                    f"The body ended after {length - remaining} of the "
                    f"{length} bytes its Content-Length declared.",
                )
            parts.append(piece)
            remaining -= len(piece)
        return b"".join(parts)

    def up_to(self, length: int) -> bytes:
        """At most `length` bytes, fewer if the stream ends."""
        parts, remaining = [], length
        while remaining:
            piece = self._read(min(remaining, _READ_SIZE))
            if not piece:
                break
            parts.append(piece)
            remaining -= len(piece)
        return b"".join(parts)

    def line(self) -> bytes:
        """One CRLF-terminated line of chunked framing (at most 1 KiB)."""
        text = self._read(1024, line=True)
        if not text.endswith(b"\n"):
            raise EdgeError(400, "BadRequest", "Malformed chunked encoding.")
        return text.rstrip(b"\r\n")


def _read_chunked(reader: _Reader, limit: int) -> bytes:
    """Decode a chunked body, refusing it as soon as it outgrows `limit`."""
    parts: list[bytes] = []
    total = 0
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise EdgeError(400, "BadRequest", f"Invalid chunk size {size_text[:20]!r}.")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(100):  # trailer fields up to the empty line
                if not reader.line():
                    return b"".join(parts)
            raise EdgeError(400, "BadRequest", "Too many trailer fields.")
        total += size
        if total > limit:
            raise _too_large(limit)
        parts.append(reader.exactly(size))
        if reader.line():
            raise EdgeError(400, "BadRequest", "A chunk is longer than its declared size.")


def _too_large(limit: int) -> EdgeError:
    """AWS's 413 for a body over the limit (Lambda's wording for Lambda requests)."""
    message = f"Request must be smaller than {limit} bytes"
    if limit == INVOKE_BODY_LIMIT:
        message += " for the InvokeFunction operation"
    return EdgeError(413, "RequestEntityTooLarge", message)


def _timeout() -> EdgeError:
    """AWS's answer to a body that does not arrive in time (S3's RequestTimeout)."""
    return EdgeError(
        400,
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    )


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


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The URL path still percent-encoded: PATH_INFO has %2F decoded into a separator."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return environ.get("PATH_INFO", "")
    return urlsplit(raw).path or "/"


def _respond(
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
