"""The API Gateway v2 provider: every HTTP API gets a local listener that really serves it.

moto stays the control plane (APIs, routes, integrations, stages). When CreateApi (or
ImportApi) makes an HTTP API, this provider starts a listener for it on 127.0.0.1; its URL
is in the local cloud's `endpoints` (what `lab.url_for(api)` returns). Requests are routed
as on AWS: stage by the first path segment (else `$default`), then the most specific route
(exact, then path variables, then `{proxy+}`, method before ANY, then the `$default` route);
no stage or no route answers 404 `{"message":"Not Found"}`. AWS_PROXY integrations invoke
the local Lambda with a payload 2.0 (or 1.0) event and map its result; HTTP_PROXY ones
forward the request to their URL. Metrics go to AWS/ApiGateway (Count, 4xx, 5xx, Latency,
IntegrationLatency by ApiId and by ApiId + Stage). Quick create (CreateApi with Target)
makes the integration, route and `$default` stage as AWS does, and CreateDeployment /
GetDeployment(s) / DeleteDeployment, which moto lacks, are answered here.

Where the local cloud differs from AWS:
- Each HTTP API listens on http://127.0.0.1:<port> (a free port chosen at CreateApi, new
  after every restart of the local cloud), without TLS; the ApiEndpoint that the API
  reports stays moto's `https://<id>.execute-api...` name, so use `lab.url_for(api)`.
  X-Forwarded-Proto is `http` and X-Forwarded-Port the local port.
- Authorizers, CORS configuration, throttling, parameter mapping, mutual TLS, custom
  domains, access logs and DisableExecuteApiEndpoint are not applied; WEBSOCKET APIs are
  left to moto and are not served.
- Every stage serves the API's current routes at once: deployments and AutoDeploy are
  recorded but there are no frozen snapshots of older deployments. Under the AWS timing
  profile (`localcloud/timing.py`) a new stage answers 404 for its first seconds, as a
  stage just deployed on AWS can.
- UpdateStage replaces each setting it is given and keeps the others; a StageVariables map
  given replaces the stage's whole map [unconfirmed: AWS may merge it].
- A CreateRoute whose RouteKey the API already has, or a CreateStage of an existing stage
  name, is a 409 ConflictException (moto adds or replaces); the route message's wording is
  [unconfirmed].
- Trailing slashes count (`/items/` does not match `GET /items`); a route whose target is
  not an integration answers 404, one whose integration is missing 500 [assumptions].
- Integration timeouts and unreachable HTTP backends answer 503 `{"message":"Service
  Unavailable"}` (seen in community reports, not documented), a throttled function 429
  `{"message":"Too Many Requests"}` [unconfirmed]; function errors and malformed function
  results 500 `{"message":"Internal Server Error"}`. MOCK and AWS service integrations
  answer 500.
- Payload 2.0: request bodies with a non-text Content-Type (or invalid UTF-8) are sent
  base64-encoded; the `cookie` header is moved into `cookies`; no default Content-Type is
  added to a function response that sets statusCode [assumptions].
- HTTP_PROXY: the `$default` route appends the full request path (with a named stage's
  prefix) to its URL; other routes use their URL with `{var}`/`{proxy+}` substituted. The
  backend gets the client's headers without hop-by-hop ones, its own Host, X-Forwarded-For
  / -Port / -Proto, X-Amzn-Trace-Id and `Forwarded: for=..;host=..;proto=http`.
- Malformed HTTP gets API Gateway's JSON `{"message": ...}` with 400 (also for Content-Length
  together with Transfer-Encoding), 505 for an HTTP version other than 1.x, 501 for a
  Transfer-Encoding other than chunked, 405 for a method HTTP APIs do not route, 431 for a
  request line and headers over 10240 bytes, 413 for a body over 10 MB [status codes
  assumed: AWS documents the quotas, not its answers]. No DataProcessed metric.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import random
import string
import threading
from typing import Any

from ..context import CloudContext
from ..http.upstream import UpstreamPool
from ..protocols import ServiceError, unless_missing
from ..registry import Provider, RequestContext
from . import events, routing
from .gateway import LIMITS, Gateway, Snapshot
from .listeners import ApiListeners, ConfigCache, StageClock
from .stages import update_stage

log = logging.getLogger("localcloud.apigatewayv2")


class ApiGatewayV2Provider(Provider):
    """Local HTTP API data plane; the control plane is moto's."""

    service = "apigatewayv2"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.listeners = ApiListeners("apigw", LIMITS, events.error)
        self._snapshots: ConfigCache[Snapshot] = ConfigCache()
        self._stages = StageClock(cloud)
        self._deployments: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()  # guards the deployments
        self.pool = UpstreamPool()  # keep-alive connections to HTTP_PROXY backends

    # --- APIs -------------------------------------------------------------------------

    def CreateApi(self, params: dict, context: RequestContext) -> dict:
        """moto creates the API; an HTTP API gets a local listener (and quick-create parts)."""
        result = self._moto("CreateApi", params, context)
        if result.get("ProtocolType") == "HTTP":
            if params.get("Target"):
                self._quick_create(result["ApiId"], params, context)
            self._serve(result["ApiId"], context)
        return result

    def ImportApi(self, params: dict, context: RequestContext) -> dict:
        """moto imports the OpenAPI definition; the HTTP API gets a local listener."""
        result = self._moto("ImportApi", params, context)
        if result.get("ProtocolType", "HTTP") == "HTTP":
            self._serve(result["ApiId"], context)
        return result

    def ReimportApi(self, params: dict, context: RequestContext) -> dict:
        """moto re-imports the definition; the listener serves the new routes."""
        return self._changed("ReimportApi", params, context)

    def UpdateApi(self, params: dict, context: RequestContext) -> dict:
        """moto updates the API."""
        return self._changed("UpdateApi", params, context)

    def DeleteApi(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the API; its listener stops. An unknown API is a 404, as on AWS."""
        self._moto("GetApi", {"ApiId": params["ApiId"]}, context)  # moto's DeleteApi would pass
        result = self._moto("DeleteApi", params, context)
        with self._lock:
            self._deployments.pop(params["ApiId"], None)
        self.listeners.stop(params["ApiId"])
        self._snapshots.invalidate(params["ApiId"])
        return result

    # --- Configuration changes: moto stores them, the cached snapshot is dropped --------

    def CreateRoute(self, params: dict, context: RequestContext) -> dict:
        """moto creates the route; the listener serves it at once. A key in use is a 409."""
        key = params["RouteKey"]
        routes = self._moto("GetRoutes", {"ApiId": params["ApiId"]}, context).get("Items", [])
        if any(route["RouteKey"] == key for route in routes):  # moto would add a second one
            raise ServiceError("ConflictException", f"Route with key {key} already exists.", 409)
        return self._changed("CreateRoute", params, context)

    def UpdateRoute(self, params: dict, context: RequestContext) -> dict:
        """moto updates the route; the listener serves the change at once."""
        return self._changed("UpdateRoute", params, context)

    def DeleteRoute(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the route; the listener stops serving it."""
        return self._changed("DeleteRoute", params, context)

    def CreateIntegration(self, params: dict, context: RequestContext) -> dict:
        """moto creates the integration (AWS_PROXY and HTTP_PROXY are run locally)."""
        return self._changed("CreateIntegration", params, context)

    def UpdateIntegration(self, params: dict, context: RequestContext) -> dict:
        """moto updates the integration; the listener uses the change at once."""
        return self._changed("UpdateIntegration", params, context)

    def DeleteIntegration(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the integration."""
        return self._changed("DeleteIntegration", params, context)

    def CreateStage(self, params: dict, context: RequestContext) -> dict:
        """moto creates the stage, served at once (AutoDeploy or not); a name in use is a 409."""
        where = {"ApiId": params["ApiId"], "StageName": params["StageName"]}
        if unless_missing(lambda: self._moto("GetStage", where, context), "NotFoundException"):
            raise ServiceError("ConflictException", "Stage already exists", 409)  # moto replaces
        created = self._changed("CreateStage", params, context)
        self._note_stage(params["ApiId"], params["StageName"])
        return created

    def _note_stage(self, api_id: str, stage: str) -> None:
        """Remember when a stage was made (the AWS timing profile serves it only later)."""
        if self._stages.note(api_id, stage):
            self._snapshots.invalidate(api_id)

    def UpdateStage(self, params: dict, context: RequestContext) -> dict:
        """The settings given replace the stage's, the others stay (moto lacks UpdateStage)."""
        where = {"ApiId": params["ApiId"], "StageName": params["StageName"]}
        self._moto("GetStage", where, context)  # NotFoundException for an unknown API or stage
        with self.cloud.moto.backend("apigatewayv2", context.account_id, context.region) as moto:
            update_stage(moto.get_stage(params["ApiId"], params["StageName"]), params)
        self._snapshots.invalidate(params["ApiId"])
        return self._moto("GetStage", where, context)

    def DeleteStage(self, params: dict, context: RequestContext) -> dict:
        """moto deletes the stage; its requests fall to `$default` or 404."""
        return self._changed("DeleteStage", params, context)

    # --- Deployments (moto has no route for them) -------------------------------------

    def CreateDeployment(self, params: dict, context: RequestContext) -> dict:
        """Record a deployment (DEPLOYED at once); stages always serve the current routes."""
        api_id = params["ApiId"]
        self._moto("GetApi", {"ApiId": api_id}, context)  # NotFoundException if unknown
        if params.get("StageName"):
            self._moto("GetStage", {"ApiId": api_id, "StageName": params["StageName"]}, context)
        deployment = {
            "AutoDeployed": False,
            "CreatedDate": dt.datetime.now(dt.UTC),
            "DeploymentId": "".join(random.choices(string.ascii_lowercase + string.digits, k=6)),
            "DeploymentStatus": "DEPLOYED",
        }
        if params.get("Description"):
            deployment["Description"] = params["Description"]
        with self._lock:
            self._deployments.setdefault(api_id, {})[deployment["DeploymentId"]] = deployment
        return copy.deepcopy(deployment)

    def GetDeployments(self, params: dict, context: RequestContext) -> dict:
        """The API's recorded deployments, oldest first (one page)."""
        self._moto("GetApi", {"ApiId": params["ApiId"]}, context)
        with self._lock:
            items = list(self._deployments.get(params["ApiId"], {}).values())
        return {"Items": copy.deepcopy(items)}

    def GetDeployment(self, params: dict, context: RequestContext) -> dict:
        """One recorded deployment (NotFoundException if unknown)."""
        return copy.deepcopy(self._deployment(params))

    def DeleteDeployment(self, params: dict, context: RequestContext) -> dict:
        """Forget a recorded deployment (NotFoundException if unknown)."""
        self._deployment(params)
        with self._lock:
            self._deployments[params["ApiId"]].pop(params["DeploymentId"], None)
        return {}

    # --- Hooks --------------------------------------------------------------------------

    def endpoints(self) -> dict[str, Any]:
        """`{"apis": {api id: base URL}}`; a named stage is `<base>/<stage>`."""
        return {"apis": self.listeners.urls()}

    def status(self) -> dict[str, Any]:
        """Served HTTP APIs and their URLs."""
        urls = self.listeners.urls()
        return {"http apis": len(urls), "apis": urls}

    def reset(self) -> None:
        """Stop every listener and forget cached configuration, stages and deployments."""
        self.listeners.stop_all()
        self._snapshots.clear()
        self._stages.clear()
        with self._lock:
            self._deployments.clear()
        self.pool.clear()

    def shutdown(self) -> None:
        """Stop every listener (the publisher flushes the last request metrics)."""
        self.reset()

    # --- Internals ----------------------------------------------------------------------

    def _moto(self, operation: str, params: dict, context: RequestContext) -> dict:
        """Let moto serve an API Gateway v2 operation."""
        return self.cloud.moto.call("apigatewayv2", operation, params, context.region)

    def _changed(self, operation: str, params: dict, context: RequestContext) -> dict:
        """Let moto apply a configuration change, then drop the API's cached snapshot."""
        try:
            return self._moto(operation, params, context)
        finally:
            self._snapshots.invalidate(params.get("ApiId", ""))

    def _serve(self, api_id: str, context: RequestContext) -> None:
        """Start the API's listener."""
        gateway = Gateway(
            api_id=api_id,
            region=context.region,
            account_id=context.account_id,
            snapshot=lambda: self._snapshot(api_id),
            cloud=self.cloud,
            pool=self.pool,
        )
        url = self.listeners.start(api_id, gateway, context)
        log.info("HTTP API %s listening on %s", api_id, url)

    def _snapshot(self, api_id: str) -> Snapshot | None:
        """The API's routes, integrations and stages (cached until a change); None if gone."""
        cached, generation = self._snapshots.lookup(api_id)
        api = self.listeners.get(api_id)
        if cached is not None or api is None:
            return cached
        context = api.context()
        try:
            routes = self._moto("GetRoutes", {"ApiId": api_id}, context).get("Items", [])
            integrations = self._moto("GetIntegrations", {"ApiId": api_id}, context)
            stages = self._moto("GetStages", {"ApiId": api_id}, context).get("Items", [])
        except ServiceError:
            return None
        parsed = []
        for route in routes:
            try:
                parsed.append(routing.parse_route_key(route["RouteKey"], route.get("Target")))
            except ValueError:
                log.warning("API %s: route key %r is not served", api_id, route["RouteKey"])
        ready = [s for s in stages if self._stages.ready(api_id, s["StageName"])]
        snapshot = Snapshot(
            routes=parsed,
            integrations={i["IntegrationId"]: i for i in integrations.get("Items", [])},
            stages={s["StageName"]: dict(s.get("StageVariables") or {}) for s in ready},
        )
        if len(ready) == len(stages):  # a stage still deploying: read again next time
            self._snapshots.store(api_id, snapshot, generation)
        return snapshot

    def _quick_create(self, api_id: str, params: dict, context: RequestContext) -> None:
        """What AWS makes for CreateApi with Target: integration, route, `$default` stage."""
        target = params["Target"]
        integration: dict[str, Any] = {"ApiId": api_id, "IntegrationUri": target}
        if target.startswith(("http://", "https://")):
            integration.update(IntegrationType="HTTP_PROXY", IntegrationMethod="ANY")
        else:
            integration.update(IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0")
        created = self._moto("CreateIntegration", integration, context)
        route_key = params.get("RouteKey") or routing.DEFAULT
        target_ref = f"integrations/{created['IntegrationId']}"
        self._moto(
            "CreateRoute", {"ApiId": api_id, "RouteKey": route_key, "Target": target_ref}, context
        )
        self._moto(
            "CreateStage",
            {"ApiId": api_id, "StageName": routing.DEFAULT, "AutoDeploy": True},
            context,
        )
        self._note_stage(api_id, routing.DEFAULT)

    def _deployment(self, params: dict) -> dict[str, Any]:
        """A recorded deployment, or NotFoundException."""
        with self._lock:
            found = self._deployments.get(params["ApiId"], {}).get(params["DeploymentId"])
        if found is None:
            raise ServiceError(
                "NotFoundException",
                f"Invalid Deployment identifier specified {params['DeploymentId']}",
                404,
            )
        return found
