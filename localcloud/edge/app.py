"""The edge's WSGI app: control API, front-door checks, providers first, moto otherwise."""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.model import OperationModel
from werkzeug.datastructures import EnvironHeaders

from .. import protocols
from ..config import FAKE_ACCOUNT_ID
from ..motogateway import MotoGateway
from ..registry import Provider, Registry, RequestContext
from .bodies import CONTROL_BODY_LIMIT, body_limit, read_body
from .callers import check_caller, signing_scope
from .errors import EdgeError, error_response, respond

log = logging.getLogger("localcloud.edge")

CONTROL_PREFIX = "/_localcloud/"
_UNIMPLEMENTED = (
    "This operation is not available on the local cloud: docs/coverage.md lists the "
    "operations it serves."
)

ControlHandler = Callable[[str, bytes], tuple[int, Any]]
# (call name, method, headers) -> a refusal (status, JSON payload), or None to let it through
ControlGuard = Callable[[str, str, Mapping[str, str]], tuple[int, Any] | None]
# (environ, region, signing name) -> True if the request was held and is not to be answered
# (a VPC caller without a route to the service: localcloud/ec2/reachability.py)
RouteCheck = Callable[[Mapping[str, Any], str, str], bool]


class Edge:
    """WSGI app: providers first, moto otherwise, control API under /_localcloud/."""

    def __init__(
        self,
        registry: Registry,
        moto: MotoGateway,
        control: ControlHandler,
        guard: ControlGuard | None = None,
        routes: RouteCheck | None = None,
    ) -> None:
        self.registry = registry
        self.moto = moto
        self.control = control
        self.guard = guard
        self.routes = routes
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
            return respond(start_response, status, headers, payload)
        if self.routes is not None and self.routes(environ, region, signing_name):
            gone = EdgeError(504, "RequestTimeout", "The caller has no route to this endpoint.")
            return respond(start_response, *error_response(environ, signing_name, gone))
        served = self._serve_by_provider(environ, region, signing_name, body, start_response)
        if served is not None:
            return served
        return self._serve_by_moto(environ, signing_name, body, start_response)

    def _serve_by_moto(
        self,
        environ: dict[str, Any],
        signing_name: str,
        body: bytes,
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        """moto's answer, unless moto failed on input that AWS refuses with a 4xx."""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True  # moto reads the body read above to its end
        started: list[Any] = []
        missing = False  # moto has no handler, or its handler says it is not implemented
        try:
            result = self.moto.serve(environ, lambda *args: started.extend(args[:2]))
        except NotImplementedError:
            result, missing = None, True
        except Exception:  # a moto bug must still answer like AWS does, not with an HTML page
            path = _raw_path(environ)
            log.error("moto failed on %s %s:\n%s", signing_name, path, traceback.format_exc())
            result = None
        status = int(started[0].split()[0]) if result is not None and started else 500
        # moto's 4xx are AWS's errors; its 5xx and its HTML pages (unknown actions) are not.
        html = status >= 400 and "text/html" in _content_type(started)
        missing = missing or (html and _no_route_page(result))
        if status >= 500 or html:
            services = protocols.service_names_for(signing_name)
            request = _aws_request(environ, body)
            refusal = protocols.diagnose(services, request)
            if refusal is None and missing:  # a valid call that nothing here serves
                refusal = protocols.unimplemented(services, request) or error_response(
                    environ, signing_name, EdgeError(501, "NotImplemented", _UNIMPLEMENTED)
                )
            if refusal is not None:
                return respond(start_response, *refusal)
        if result is None:
            failure = EdgeError(500, "InternalFailure", "The request processing has failed.")
            return respond(start_response, *error_response(environ, signing_name, failure))
        start_response(started[0], started[1])
        return result

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
        return respond(
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
        request = _aws_request(environ, body)
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
            return respond(start_response, status, headers, payload)
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


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The URL path still percent-encoded: PATH_INFO has %2F decoded into a separator."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return environ.get("PATH_INFO", "")
    return urlsplit(raw).path or "/"


def _aws_request(environ: dict[str, Any], body: bytes) -> protocols.AwsRequest:
    """The request as the protocol layer reads it."""
    return protocols.AwsRequest(
        method=environ["REQUEST_METHOD"],
        path=_raw_path(environ),
        query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        headers=EnvironHeaders(environ),
        body=body,
    )


def _no_route_page(result: list[bytes] | None) -> bool:
    """Whether moto answered with its web framework's 404 page: no handler for the request.

    Not every HTML answer is one: moto's S3 answers a HEAD of a missing bucket 404 text/html
    with an empty body, which is S3's own answer.
    """
    body = b"".join(result or [])
    return body.lstrip().lower().startswith(b"<!doctype html>") and b"404 Not Found" in body


def _content_type(started: list[Any]) -> str:
    """The Content-Type a WSGI app started its response with ('' if none)."""
    headers = started[1] if len(started) > 1 else []
    return next((v for k, v in headers if k.lower() == "content-type"), "")
