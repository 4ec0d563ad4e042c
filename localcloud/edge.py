"""The edge: the local cloud's single HTTP endpoint, dispatching each AWS request.

Every request is looked at once: the SigV4 credential scope names the service and region;
only when a course provider exists for that service is the operation identified (by the
protocol's rules) and, if the provider defines it, served there. Everything else, including
every request for services without a provider, goes to moto unchanged. Paths under
`/_localcloud/` are the daemon's own control API (health, status, reset, shutdown).
"""

from __future__ import annotations

import io
import json
import logging
import re
import traceback
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from botocore.model import OperationModel
from werkzeug.datastructures import EnvironHeaders

from . import protocols
from .config import FAKE_ACCOUNT_ID
from .motogateway import MotoGateway
from .registry import Provider, Registry, RequestContext

log = logging.getLogger("localcloud.edge")

CONTROL_PREFIX = "/_localcloud/"
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/aws4_request")

ControlHandler = Callable[[str, bytes], tuple[int, Any]]


class Edge:
    """WSGI app: providers first, moto otherwise, control API under /_localcloud/."""

    def __init__(self, registry: Registry, moto: MotoGateway, control: ControlHandler) -> None:
        self.registry = registry
        self.moto = moto
        self.control = control
        self._candidates: dict[str, list[str]] = {}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        body = _read_body(environ)
        if path.startswith(CONTROL_PREFIX):
            status, payload = self.control(path[len(CONTROL_PREFIX) :], body)
            return _respond(
                start_response,
                status,
                {"Content-Type": "application/json"},
                json.dumps(payload, default=str).encode(),
            )
        served = self._serve_by_provider(environ, path, body, start_response)
        if served is not None:
            return served
        environ["wsgi.input"] = io.BytesIO(body)
        return self.moto.serve(environ, start_response)

    def _serve_by_provider(
        self, environ: dict[str, Any], path: str, body: bytes, start_response: Callable[..., Any]
    ) -> Iterable[bytes] | None:
        """Serve the request with a course provider, or return None to fall through to moto."""
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None:
            return None
        region, signing_name = scope.groups()
        services = self._provider_services(signing_name)
        if not services:
            return None
        request = protocols.AwsRequest(
            method=environ["REQUEST_METHOD"],
            path=path,
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


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body (length-delimited or chunked)."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(int(length))
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def _respond(
    start_response: Callable[..., Any], status: int, headers: dict[str, str], body: bytes
) -> list[bytes]:
    """Start a WSGI response with a Content-Length and return its body."""
    headers = {**headers, "Content-Length": str(len(body))}
    start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
    return [body]
