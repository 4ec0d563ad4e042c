"""Serving one HTTP API request: stage, route, integration, response, metrics.

The API's configuration comes as a `Snapshot` (routes, integrations, stages) that the
provider reads from moto and caches until a write operation changes it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..context import CloudContext
from ..http.framing import Limits
from ..http.messages import HttpRequest, HttpResponse
from ..http.upstream import UpstreamPool, UpstreamTimeout, UpstreamUnavailable
from ..lambda_.functions import FunctionSpec
from ..lambda_.provider import LambdaProvider, Result
from ..protocols import ServiceError
from ..registry import RequestContext
from . import events, http_proxy, routing
from .events import EventContext, MalformedResponse
from .metrics import HTTP_API

log = logging.getLogger("localcloud.apigatewayv2")

MAX_TIMEOUT_MS = 30_000  # HTTP APIs: TimeoutInMillis 50..30000, default 30000
NOT_FOUND = "Not Found"
INTERNAL = "Internal Server Error"
# An integration that takes longer than its timeout: community reports of real HTTP APIs
# show 503 {"message":"Service Unavailable"} (cortexlabs/cortex#1225, sst#2232) [UNCONFIRMED
# in AWS documentation]; the same answer is given for a backend that cannot be reached.
UNAVAILABLE = (503, "Service Unavailable")
THROTTLED = (429, "Too Many Requests")  # [UNCONFIRMED] the Lambda throttle message
_LAMBDA_PATH = "/functions/"
# HTTP API quotas: 10240 bytes for the request line and header values (counted here over
# whole header lines), a 10 MB payload
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html); what
# AWS answers beyond them, and to ambiguous framing, is not documented: 431, 413 and 400 here.
LIMITS = Limits(
    line=10240, head=10240, too_large=431, max_body=10 * 1024 * 1024, refuse_ambiguous=True
)


@dataclass(frozen=True)
class Snapshot:
    """An API's routes, integrations (by id) and stages (name -> stage variables)."""

    routes: list[routing.Route]
    integrations: dict[str, dict[str, Any]]
    stages: dict[str, dict[str, str]]


@dataclass
class Outcome:
    """A response plus what the metrics need to know about it."""

    response: HttpResponse
    stage: str | None = None
    integration_ms: float | None = None


@dataclass
class Gateway:
    """The request handler of one HTTP API."""

    api_id: str
    region: str
    account_id: str
    snapshot: Callable[[], Snapshot | None]
    cloud: CloudContext
    pool: UpstreamPool  # keep-alive connections to HTTP_PROXY backends

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Serve one request; every answer carries `apigw-requestid`."""
        started = time.perf_counter()
        epoch_ms = int(time.time() * 1000)
        request_id = events.new_request_id()
        outcome = self._serve(request, request_id, epoch_ms)
        response = outcome.response
        response.headers.append(("apigw-requestid", request_id))
        if outcome.stage is not None:  # AWS: no stage, no metrics (and no logs)
            HTTP_API.record(
                self.cloud.publisher,
                self.api_id,
                outcome.stage,
                epoch_ms / 1000,
                response.status,
                (time.perf_counter() - started) * 1000,
                outcome.integration_ms,
            )
        return response

    def _serve(self, request: HttpRequest, request_id: str, epoch_ms: int) -> Outcome:
        """Select stage, route and integration, and run the integration."""
        snapshot = self.snapshot()
        if snapshot is None:
            return Outcome(events.error(404, NOT_FOUND))
        selected = routing.select_stage(set(snapshot.stages), request.raw_path)
        if selected is None:
            return Outcome(events.error(404, NOT_FOUND))
        stage, path = selected
        match = routing.select_route(snapshot.routes, request.method, path)
        target = match.route.target or "" if match else ""
        if match is None or not target.startswith("integrations/"):
            # A route without an integration is answered like a missing one [UNCONFIRMED].
            return Outcome(events.error(404, NOT_FOUND), stage)
        integration = snapshot.integrations.get(target.split("/", 1)[1])
        if integration is None:
            return Outcome(events.error(500, INTERNAL), stage)
        ctx = EventContext(
            api_id=self.api_id,
            account_id=self.account_id,
            stage=stage,
            route_key=match.route.route_key,
            resource_path=match.route.path or path,
            request_id=request_id,
            path_parameters=match.path_parameters,
            stage_variables=snapshot.stages[stage],
            epoch_ms=epoch_ms,
        )
        timeout_ms = min(int(integration.get("TimeoutInMillis") or MAX_TIMEOUT_MS), MAX_TIMEOUT_MS)
        kind = integration.get("IntegrationType")
        began = time.perf_counter()
        if kind == "AWS_PROXY":
            response = self._lambda(request, ctx, integration, timeout_ms)
        elif kind == "HTTP_PROXY":
            response = self._http(request, match, integration, timeout_ms)
        else:  # MOCK and AWS service integrations are not run locally
            log.warning("API %s: %s integrations are not served locally", self.api_id, kind)
            response = events.error(500, INTERNAL)
        return Outcome(response, stage, (time.perf_counter() - began) * 1000)

    def _lambda(
        self, request: HttpRequest, ctx: EventContext, integration: dict[str, Any], timeout_ms: int
    ) -> HttpResponse:
        """Invoke the function with the payload of the integration's format version."""
        version = integration.get("PayloadFormatVersion") or "2.0"
        build, mapping = (
            (events.event_v1, events.response_v1)
            if version == "1.0"
            else (events.event_v2, events.response_v2)
        )
        uri = integration.get("IntegrationUri") or ""
        try:
            target = lambda_target(self.cloud, uri, self.region, self.account_id)
        except ServiceError as problem:
            log.warning("API %s: cannot invoke %s: %s", self.api_id, uri, problem)
            return events.error(500, INTERNAL)
        spec = target.spec
        payload = json.dumps(build(request, ctx)).encode()
        try:
            result = invoke_within(target.provider, spec, payload, target.context, timeout_ms)
        except IntegrationTimeout:
            return events.error(*UNAVAILABLE)
        if result is None:
            return events.error(*THROTTLED)
        if result.function_error:
            return events.error(500, INTERNAL)
        try:
            return mapping(result.body)
        except MalformedResponse as problem:
            log.warning("API %s: malformed response from %s: %s", self.api_id, spec.name, problem)
            return events.error(500, INTERNAL)

    def _http(
        self,
        request: HttpRequest,
        match: routing.RouteMatch,
        integration: dict[str, Any],
        timeout_ms: int,
    ) -> HttpResponse:
        """Forward to the integration's URL and relay the backend's answer."""
        url = routing.integration_url(
            integration.get("IntegrationUri") or "", match, request.raw_path, request.raw_query
        )
        method = integration.get("IntegrationMethod") or "ANY"
        method = request.method if method == "ANY" else method
        headers = events.forwarding_headers(request)
        host = request.header("host")
        if host:
            headers.append(("Forwarded", f"for={request.source_ip};host={host};proto=http"))
        try:
            return http_proxy.forward(
                self.pool, method, url, headers, request.body, timeout_ms / 1000
            )
        except UpstreamTimeout:
            return events.error(*UNAVAILABLE)
        except UpstreamUnavailable as problem:
            log.info("API %s: backend %s unavailable: %s", self.api_id, url, problem)
            return events.error(*UNAVAILABLE)


class IntegrationTimeout(Exception):
    """The function did not answer within the integration's timeout (it runs on)."""


def invoke_within(
    provider: LambdaProvider,
    spec: FunctionSpec,
    payload: bytes,
    context: RequestContext,
    timeout_ms: int,
) -> Result | None:
    """Run the function for an API (None when throttled); IntegrationTimeout after timeout_ms."""
    if spec.timeout_s * 1000 <= timeout_ms:  # the function's own timeout ends it first
        return provider.run(spec, payload, context)
    answer: queue.SimpleQueue[Result | None] = queue.SimpleQueue()
    threading.Thread(
        target=lambda: answer.put(provider.run(spec, payload, context)),
        name="apigw-lambda",
        daemon=True,
    ).start()
    try:
        return answer.get(timeout=timeout_ms / 1000)
    except queue.Empty:
        raise IntegrationTimeout from None


@dataclass(frozen=True)
class LambdaTarget:
    """The function an integration invokes, and how to reach it."""

    provider: LambdaProvider
    spec: FunctionSpec
    qualifier: str | None
    context: RequestContext  # the function's region, the API's account


def lambda_target(cloud: CloudContext, uri: str, region: str, account_id: str) -> LambdaTarget:
    """The function an integration URI names (ServiceError if Lambda does not know it)."""
    function_arn, qualifier = function_of(uri)
    in_region = function_arn.split(":")[3] if function_arn.count(":") >= 6 else region
    context = RequestContext(region=in_region or region, account_id=account_id)
    provider = cloud.providers.get(LambdaProvider)
    return LambdaTarget(
        provider, provider.function_spec(function_arn, qualifier, context), qualifier, context
    )


def function_of(uri: str) -> tuple[str, str | None]:
    """(function ARN without qualifier, qualifier) from a Lambda or API Gateway invoke ARN."""
    if _LAMBDA_PATH in uri and uri.startswith("arn:aws:apigateway:"):
        uri = uri.split(_LAMBDA_PATH, 1)[1].removesuffix("/invocations")
    parts = uri.split(":")
    if len(parts) >= 8 and parts[5] == "function":
        return ":".join(parts[:7]), parts[7] or None
    return uri, None
