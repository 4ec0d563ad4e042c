"""The API Gateway (REST API, v1) provider: every REST API gets a local listener that serves it.

moto stays the control plane (REST APIs, resources, methods, integrations, deployments,
stages). CreateRestApi (or ImportRestApi) starts a listener for the API on 127.0.0.1; its URL
is in the local cloud's `endpoints` as `{"restapis": {id: url}}` (what `lab.url_for(api,
stage)` returns, plus the stage). CreateDeployment freezes the API's resource tree, methods
and integrations, as AWS does: a stage serves the deployment it points at, so a change shows
only after a new deployment
(https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-deployments.html).

A request `<url>/<stage>/<path>` is routed as on AWS: the most specific resource (literal,
then `{param}`, then `{proxy+}`), the request's method before ANY. AWS_PROXY integrations
invoke the local Lambda with the payload 1.0 event, after checking that the function's
resource policy lets `apigateway.amazonaws.com` invoke it from the method's execute-api ARN;
the result is mapped as AWS documents it. API Gateway's own answers: 403
`{"message":"Missing Authentication Token"}` for an unknown stage, resource or method, 502
`{"message":"Internal server error"}` for a function error or a malformed proxy response, 500
when Lambda refuses the invoke: a missing permission, a throttled function (AWS does not pass
Lambda's 429 on), a function that is gone
(https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html); 504
`{"message":"Endpoint request timed out"}` after the integration's timeoutInMillis (default
29 s), 413 for a body over 10 MB. Each answer carries x-amzn-RequestId and
x-amz-apigw-id, errors x-amzn-ErrorType where AWS documents one. Metrics go to AWS/ApiGateway
(Count, 4XXError, 5XXError, Latency, IntegrationLatency by ApiName and ApiName + Stage); a
stage with accessLogSettings gets a line per request in its log group, in its format.

The control calls moto gets wrong are corrected here: a duplicate or second variable path
part (ConflictException), PutMethod on an existing method (ConflictException; moto replaced
it and dropped its integration), timeoutInMillis outside 50..29000 (BadRequestException),
CreateStage with an unknown deployment (NotFoundException), DeleteRestApi of an unknown API
(NotFoundException; moto failed). An integration without timeoutInMillis reports 29000.

Where the local cloud differs from AWS:
- Each REST API listens on http://127.0.0.1:<port> (a free port chosen at CreateRestApi, new
  after every restart of the local cloud), without TLS, and the stage is the first path
  segment; use `lab.url_for(api, stage)`. X-Forwarded-Proto is `http` and X-Forwarded-Port
  the local port.
- Authorizers, API keys and usage plans, resource policies of the API, throttling settings,
  request validation, mapping templates, caching, custom gateway responses, custom domains
  and execution logs are not applied. MOCK, AWS and HTTP (non-proxy) integrations
  answer 500.
- When the most specific resource lacks the request's method, a less specific resource that
  has it (e.g. a `{proxy+}` with ANY) serves the request [assumption]; a greedy resource
  never matches the bare stage path.
- The 504 and 413 answers carry no x-amzn-ErrorType, and the 413 message ("Request Too
  Long") is the gateway response default as reported, not documented [unconfirmed]. A body
  over 10 MB is refused by the listener before routing: no request id header, no metrics.
  An unreachable HTTP_PROXY backend answers 502 [assumption].
- timeoutInMillis above 29000 is refused, as by default on AWS; AWS allows more for
  Regional APIs after a quota increase.
- HTTP_PROXY: `{name}` / `{name+}` in the URI take the path parameters of the same name
  without requestParameters mappings; the query string is passed on.
- Access logs (the stage's accessLogSettings) are written to an existing log group, one
  stream per API and stage named `<api id>-<stage>` [assumption: AWS names its streams
  itself]; the `$context` variables filled in are the request's ids, time, method, paths,
  resource, status, response length, latencies, source IP, user agent and error message,
  every other one is `-`.
- The event's `requestTime`/`requestTimeEpoch` are the local clock's; `identity` carries only
  sourceIp and userAgent; `isBase64Encoded` is true only for a Content-Type listed in the
  API's binaryMediaTypes (as on AWS), else the body is decoded as UTF-8.
- Under the AWS timing profile (`localcloud/timing.py`) a new stage answers 403 for its first
  seconds, as a stage just deployed on AWS can; a redeployment is served at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..apigatewayv2.listeners import ApiListeners, ConfigCache, StageClock
from ..context import CloudContext
from ..http.upstream import UpstreamPool
from ..protocols import ServiceError
from ..registry import Provider, RequestContext
from . import access_log, proxy, resources
from .gateway import LIMITS, Gateway, StageView
from .permissions import PolicyReader
from .resources import Deployment

log = logging.getLogger("localcloud.apigateway")

MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 50, 29_000
_PAGE = 500


class ApiGatewayProvider(Provider):
    """Local REST API data plane; the control plane is moto's."""

    service = "apigateway"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.listeners = ApiListeners("restapi", LIMITS, proxy.listener_error)
        self._deployments: dict[str, dict[str, Deployment]] = {}  # api -> id -> frozen tree
        self._views: ConfigCache[dict[str, StageView]] = ConfigCache()  # served stages
        self._stages = StageClock(cloud)
        self._lock = threading.Lock()  # guards the deployments
        self.policies = PolicyReader(cloud.moto)
        self.pool = UpstreamPool()

    # --- REST APIs ----------------------------------------------------------------------

    def CreateRestApi(self, params: dict, context: RequestContext) -> dict:
        """moto creates the API; it gets a local listener."""
        result = self._moto("CreateRestApi", params, context)
        self._serve(result["id"], context)
        return result

    def ImportRestApi(self, params: dict, context: RequestContext) -> dict:
        """moto imports the OpenAPI definition; the API gets a local listener."""
        result = self._moto("ImportRestApi", params, context)
        self._serve(result["id"], context)
        return result

    def DeleteRestApi(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the API (NotFoundException if unknown); its listener stops."""
        api_id = params["restApiId"]
        self._moto("GetRestApi", {"restApiId": api_id}, context)
        result = self._moto("DeleteRestApi", params, context)
        with self._lock:
            self._deployments.pop(api_id, None)
        self.listeners.stop(api_id)
        self._views.invalidate(api_id)
        return result

    # --- Resources, methods, integrations: AWS's checks that moto lacks -----------------

    def CreateResource(self, params: dict, context: RequestContext) -> dict:
        """moto creates the resource unless a sibling has its name or a variable part."""
        siblings = [
            item.get("pathPart") or ""
            for item in self._resources(params["restApiId"], context, embed=False)
            if item.get("parentId") == params["parentId"]
        ]
        conflict = resources.check_path_part(siblings, params["pathPart"])
        if conflict is not None:
            raise ServiceError("ConflictException", conflict, 409)
        return self._moto("CreateResource", params, context)

    def PutMethod(self, params: dict, context: RequestContext) -> dict:
        """moto creates the method; an existing one is a ConflictException, as on AWS."""
        key = {k: params[k] for k in ("restApiId", "resourceId", "httpMethod")}
        try:
            self._moto("GetMethod", key, context)
        except ServiceError as problem:
            if problem.code != "NotFoundException":
                raise
        else:
            raise ServiceError("ConflictException", "Method already exists for this resource", 409)
        return self._moto("PutMethod", params, context)

    def PutIntegration(self, params: dict, context: RequestContext) -> dict:
        """moto stores the integration; timeoutInMillis checked (50..29000, default 29000)."""
        timeout = params.setdefault("timeoutInMillis", MAX_TIMEOUT_MS)
        if not MIN_TIMEOUT_MS <= timeout <= MAX_TIMEOUT_MS:
            raise ServiceError(
                "BadRequestException",
                f"Timeout should be between {MIN_TIMEOUT_MS} ms and {MAX_TIMEOUT_MS} ms",
            )
        if params.get("type") in ("AWS", "AWS_PROXY", "HTTP", "HTTP_PROXY") and not params.get(
            "uri"
        ):
            raise ServiceError("BadRequestException", "Invalid Integration URI specified")
        return self._moto("PutIntegration", params, context)

    # --- Deployments and stages ---------------------------------------------------------

    def CreateDeployment(self, params: dict, context: RequestContext) -> dict:
        """moto records the deployment (and stage); the resource tree is frozen for it here."""
        api_id = params["restApiId"]
        stage = params.get("stageName")
        new_stage = bool(stage) and not self._has_stage(api_id, stage, context)
        result = self._moto("CreateDeployment", params, context)
        api = self._moto("GetRestApi", {"restApiId": api_id}, context)
        frozen = resources.deployment_of(result["id"], api, self._resources(api_id, context))
        with self._lock:
            self._deployments.setdefault(api_id, {})[result["id"]] = frozen
        self._views.invalidate(api_id)
        if new_stage:
            self._note_stage(api_id, stage)
        return result

    def DeleteDeployment(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the deployment (not while a stage points at it; NotFound if unknown)."""
        self._known_deployment(params["restApiId"], params["deploymentId"], context)
        result = self._moto("DeleteDeployment", params, context)
        with self._lock:
            self._deployments.get(params["restApiId"], {}).pop(params["deploymentId"], None)
        self._views.invalidate(params["restApiId"])
        return result

    def GetDeployment(self, params: dict, context: RequestContext) -> dict:
        """moto's deployment (NotFoundException if unknown; moto failed)."""
        self._known_deployment(params["restApiId"], params["deploymentId"], context)
        return self._moto("GetDeployment", params, context)

    def CreateStage(self, params: dict, context: RequestContext) -> dict:
        """moto creates the stage for a deployment that exists (NotFoundException if not)."""
        api_id = params["restApiId"]
        self._known_deployment(api_id, params["deploymentId"], context)
        try:
            result = self._moto("CreateStage", params, context)
        finally:
            self._views.invalidate(api_id)
        self._note_stage(api_id, params["stageName"])
        return result

    def UpdateStage(self, params: dict, context: RequestContext) -> dict:
        """moto updates the stage (its deployment, its variables): served at once."""
        try:
            return self._moto("UpdateStage", params, context)
        finally:
            self._views.invalidate(params["restApiId"])

    def DeleteStage(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the stage; its URL answers 403."""
        try:
            return self._moto("DeleteStage", params, context)
        finally:
            self._views.invalidate(params["restApiId"])

    # --- Hooks --------------------------------------------------------------------------

    def endpoints(self) -> dict[str, Any]:
        """`{"restapis": {api id: base URL}}`; a stage is `<base>/<stage>`."""
        return {"restapis": self.listeners.urls()}

    def status(self) -> dict[str, Any]:
        """Served REST APIs and their URLs."""
        urls = self.listeners.urls()
        return {"rest apis": len(urls), "restapis": urls}

    def reset(self) -> None:
        """Stop every listener and forget deployments."""
        self.listeners.stop_all()
        with self._lock:
            self._deployments.clear()
        self._views.clear()
        self._stages.clear()
        self.pool.clear()

    def shutdown(self) -> None:
        """Stop every listener (the publisher flushes the last request metrics)."""
        self.reset()

    # --- Internals ----------------------------------------------------------------------

    def _moto(self, operation: str, params: dict, context: RequestContext) -> dict:
        """Let moto serve an API Gateway operation."""
        return self.cloud.moto.call("apigateway", operation, params, context.region)

    def _resources(
        self, api_id: str, context: RequestContext, embed: bool = True
    ) -> list[dict[str, Any]]:
        """Every resource of the API (with methods and integrations when `embed`)."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"restApiId": api_id, "limit": _PAGE}
        if embed:
            request["embed"] = ["methods"]
        while True:
            page = self._moto("GetResources", request, context)
            items += page.get("items", [])
            if not page.get("position"):
                return items
            request["position"] = page["position"]

    def _known_deployment(self, api_id: str, deployment_id: str, context: RequestContext) -> None:
        """NotFoundException unless the API has this deployment."""
        self._moto("GetRestApi", {"restApiId": api_id}, context)
        with self._lock:
            known = deployment_id in self._deployments.get(api_id, {})
        if not known:
            raise ServiceError("NotFoundException", "Invalid Deployment identifier specified", 404)

    def _has_stage(self, api_id: str, stage: str, context: RequestContext) -> bool:
        try:
            self._moto("GetStage", {"restApiId": api_id, "stageName": stage}, context)
        except ServiceError:
            return False
        return True

    def _note_stage(self, api_id: str, stage: str) -> None:
        """Remember when a stage was made (the AWS timing profile serves it only later)."""
        if self._stages.note(api_id, stage):
            self._views.invalidate(api_id)

    def _serve(self, api_id: str, context: RequestContext) -> None:
        """Start the API's listener."""
        gateway = Gateway(
            api_id=api_id,
            region=context.region,
            account_id=context.account_id,
            stages=lambda: self._stage_views(api_id),
            cloud=self.cloud,
            policies=self.policies,
            pool=self.pool,
        )
        url = self.listeners.start(api_id, gateway, context)
        log.info("REST API %s listening on %s", api_id, url)

    def _stage_views(self, api_id: str) -> dict[str, StageView]:
        """The API's served stages (cached until a stage or deployment changes)."""
        cached, generation = self._views.lookup(api_id)
        api = self.listeners.get(api_id)
        if cached is not None or api is None:
            return cached or {}
        with self._lock:
            deployments = dict(self._deployments.get(api_id, {}))
        context = api.context()
        try:
            stages = self._moto("GetStages", {"restApiId": api_id}, context).get("item", [])
        except ServiceError:
            return {}
        views: dict[str, StageView] = {}
        pending = False
        for stage in stages:
            frozen = deployments.get(stage.get("deploymentId") or "")
            if frozen is None:
                continue
            if not self._stages.ready(api_id, stage["stageName"]):
                pending = True
                continue
            variables = dict(stage.get("variables") or {})
            views[stage["stageName"]] = StageView(frozen, variables, access_log.settings_of(stage))
        if not pending:  # a stage still deploying: read again next time
            self._views.store(api_id, views, generation)
        return views
