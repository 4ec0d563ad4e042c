"""Serving one REST API request: stage, resource and method, integration, response, metrics.

The stages come from the provider as `StageView`s: the deployment each stage points at (the
resource tree frozen at CreateDeployment) and its stage variables.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from ..apigatewayv2 import events, http_proxy, routing
from ..apigatewayv2.gateway import IntegrationTimeout, invoke_within, lambda_target
from ..context import CloudContext
from ..http.framing import Limits
from ..http.messages import HttpRequest, HttpResponse
from ..http.upstream import UpstreamPool, UpstreamTimeout, UpstreamUnavailable
from ..protocols import ServiceError
from . import access_log, proxy, resources
from .access_log import AccessLog
from .metrics import REST_API
from .permissions import PolicyReader
from .proxy import BAD_GATEWAY, INTERNAL, MISSING_TOKEN, TIMED_OUT, gateway_response
from .resources import Deployment, Match

log = logging.getLogger("localcloud.apigateway")

Answer = tuple[HttpResponse, str | None]  # the response; API Gateway's message if its own

DEFAULT_TIMEOUT_MS = 29_000
# REST API quotas: a 10 MB payload; 10240 bytes of headers
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
LIMITS = Limits(
    line=10240, head=10240, too_large=431, max_body=10 * 1024 * 1024, refuse_ambiguous=True
)


@dataclass(frozen=True)
class StageView:
    """A served stage: the deployment it points at, its stage variables, its access log."""

    deployment: Deployment
    variables: dict[str, str]
    access_log: AccessLog | None = None


@dataclass
class Outcome:
    """A response plus what the metrics and the access log need to know about it."""

    response: HttpResponse
    stage: str | None = None
    view: StageView | None = None
    match: Match | None = None
    integration_ms: float | None = None
    error: str | None = None  # API Gateway's own message, when it answered itself


@dataclass
class Gateway:
    """The request handler of one REST API."""

    api_id: str
    region: str
    account_id: str
    stages: Callable[[], Mapping[str, StageView]]
    cloud: CloudContext
    policies: PolicyReader
    pool: UpstreamPool  # keep-alive connections to HTTP_PROXY backends

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Serve one request; every answer carries x-amzn-RequestId and x-amz-apigw-id."""
        started = time.perf_counter()
        epoch_ms = int(time.time() * 1000)
        request_id, extended_id = proxy.new_request_ids()
        outcome = self._serve(request, request_id, extended_id, epoch_ms)
        response = outcome.response
        response.headers += [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", extended_id)]
        if outcome.stage is None or outcome.view is None:  # no stage, no metrics, no log
            return response
        latency_ms = (time.perf_counter() - started) * 1000
        REST_API.record(
            self.cloud.publisher,
            outcome.view.deployment.api_name,
            outcome.stage,
            epoch_ms / 1000,
            response.status,
            latency_ms,
            outcome.integration_ms,
        )
        if outcome.view.access_log is not None:
            values = self._access_values(request, outcome, request_id, extended_id, epoch_ms)
            values["responseLatency"] = round(latency_ms)
            line = access_log.render(outcome.view.access_log.line_format, values)
            stream = f"{self.api_id}-{outcome.stage}"  # [assumption] AWS's stream names differ
            key = (self.account_id, self.region, outcome.view.access_log.group, stream)
            self.cloud.logs.add(key, line)
        return response

    def _access_values(
        self,
        request: HttpRequest,
        outcome: Outcome,
        request_id: str,
        extended_id: str,
        epoch_ms: int,
    ) -> dict[str, object]:
        """The `$context` variables of one request, for its access log line."""
        match, view = outcome.match, outcome.view
        integration_ms = outcome.integration_ms
        return {
            "accountId": self.account_id,
            "apiId": self.api_id,
            "deploymentId": view.deployment.deployment_id if view else None,
            "domainName": request.header("host"),
            "error.message": outcome.error,
            "error.messageString": f'"{outcome.error}"' if outcome.error else None,
            "extendedRequestId": extended_id,
            "httpMethod": request.method,
            "identity.sourceIp": request.source_ip,
            "identity.userAgent": request.header("user-agent"),
            "integrationLatency": None if integration_ms is None else round(integration_ms),
            "integration.latency": None if integration_ms is None else round(integration_ms),
            "path": request.raw_path,
            "protocol": request.protocol,
            "requestId": request_id,
            "requestTime": events.request_time(epoch_ms),
            "requestTimeEpoch": epoch_ms,
            "resourceId": match.resource.resource_id if match else None,
            "resourcePath": match.resource.path if match else None,
            "responseLength": len(outcome.response.body),
            "stage": outcome.stage,
            "status": outcome.response.status,
        }

    def _serve(
        self, request: HttpRequest, request_id: str, extended_id: str, epoch_ms: int
    ) -> Outcome:
        """Select stage, resource and method, and run the method's integration."""
        first, _, rest = request.raw_path.lstrip("/").partition("/")
        view = self.stages().get(unquote(first)) if first else None
        if view is None:
            return Outcome(gateway_response(MISSING_TOKEN))
        stage, deployment = unquote(first), view.deployment
        path = "/" + rest
        match = resources.select(deployment, request.method, path)
        if match is None:
            return Outcome(gateway_response(MISSING_TOKEN), stage, view, error=MISSING_TOKEN[1])
        integration = match.integration
        kind = integration.get("type")
        timeout_ms = int(integration.get("timeoutInMillis") or DEFAULT_TIMEOUT_MS)
        began = time.perf_counter()
        if kind == "AWS_PROXY":
            facts = proxy.EventFacts(
                api_id=self.api_id,
                account_id=self.account_id,
                stage=stage,
                deployment_id=deployment.deployment_id,
                request_id=request_id,
                extended_request_id=extended_id,
                epoch_ms=epoch_ms,
                stage_variables=view.variables,
                binary_media_types=deployment.binary_media_types,
            )
            response, error = self._lambda(request, path, match, facts, timeout_ms)
        elif kind == "HTTP_PROXY":
            response, error = self._http(request, match, integration, timeout_ms)
        else:  # MOCK, AWS and HTTP (non-proxy) integrations are not run locally
            log.warning("REST API %s: %s integrations are not served locally", self.api_id, kind)
            response, error = _own(INTERNAL)
        integration_ms = (time.perf_counter() - began) * 1000
        return Outcome(response, stage, view, match, integration_ms, error)

    def _lambda(
        self,
        request: HttpRequest,
        path: str,
        match: Match,
        facts: proxy.EventFacts,
        timeout_ms: int,
    ) -> Answer:
        """Invoke the function with the payload 1.0 event and map its result."""
        integration = match.integration
        if (integration.get("httpMethod") or "POST") != "POST":
            log.warning("REST API %s: Lambda integrations must use POST", self.api_id)
            return _own(INTERNAL)
        uri = integration.get("uri") or ""
        try:
            target = lambda_target(self.cloud, uri, self.region, self.account_id)
        except ServiceError as problem:
            log.warning("REST API %s: cannot invoke %s: %s", self.api_id, uri, problem)
            return _own(INTERNAL)
        spec = target.spec
        source = resources.source_arn(self.region, self.account_id, self.api_id, facts.stage, match)
        if not self.policies.allows(spec.arn, target.qualifier, source):
            log.warning(
                "REST API %s: %s does not allow %s to invoke it from %s",
                self.api_id,
                spec.name,
                "apigateway.amazonaws.com",
                source,
            )
            return _own(INTERNAL)
        payload = json.dumps(proxy.event(request, path, match, facts)).encode()
        try:
            result = invoke_within(target.provider, spec, payload, target.context, timeout_ms)
        except IntegrationTimeout:
            return _own(TIMED_OUT)
        if result is None:  # Lambda refused the invoke (throttled): AWS answers 500, not 429
            return _own(INTERNAL)
        if result.function_error:
            return _own(BAD_GATEWAY)
        try:
            mapped = proxy.response(result.body, request.header("accept"), facts.binary_media_types)
            return mapped, None
        except proxy.MalformedResponse as problem:
            log.warning(
                "REST API %s: malformed Lambda proxy response from %s: %s",
                self.api_id,
                spec.name,
                problem,
            )
            return _own(BAD_GATEWAY)

    def _http(
        self, request: HttpRequest, match: Match, integration: dict, timeout_ms: int
    ) -> Answer:
        """Forward to the integration's URL (path parameters filled in) and relay the answer."""
        greedy = match.resource.segments[-1][1:-2] if match.resource.greedy else None
        uri = integration.get("uri") or ""
        url = routing.filled_uri(uri, match.path_parameters, greedy, request.raw_query)
        method = integration.get("httpMethod") or "ANY"
        method = request.method if method == "ANY" else method
        try:
            relayed = http_proxy.forward(
                self.pool,
                method,
                url,
                events.forwarding_headers(request),
                request.body,
                timeout_ms / 1000,
            )
            return relayed, None
        except UpstreamTimeout:
            return _own(TIMED_OUT)
        except UpstreamUnavailable as problem:
            log.info("REST API %s: backend %s unavailable: %s", self.api_id, url, problem)
            return _own(BAD_GATEWAY)


def _own(answer: tuple[int, str, str | None]) -> Answer:
    """API Gateway's own answer, with its message for the access log."""
    return gateway_response(answer), answer[1]
