"""The Lambda provider: Invoke runs the function's real code in a local worker.

Everything else about functions (create, get, list, update, delete, permissions, event
invoke configs) stays with moto; this provider reads the function from moto at an invoke
after any request that may have changed moto (`MotoGateway.generation`), else keeps it.

Invoke as on AWS (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html):
- RequestResponse: 200 with the function's result; a function error is still 200, with
  `X-Amz-Function-Error: Unhandled` and the error document (handler exception, timeout
  `Sandbox.Timedout`, runtime exit `Runtime.ExitError`, init error such as
  `Runtime.ImportModuleError`, oversized response `Function.ResponseSizeTooLarge`).
- Event: 202 at once; the invocation runs in the background, and a function error is
  retried MaximumRetryAttempts times (default 2) after 60 s and 120 s; throttles are
  retried with back-off until MaximumEventAgeInSeconds
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
- DryRun: 204 when the function exists.
- LogType Tail: the last 4 KB of the invocation's log, base64, in `X-Amz-Log-Result`.
- Service errors: unknown function 404 ResourceNotFoundException; a request over 6 MB
  (sync) or 1 MB (Event) 413 RequestEntityTooLargeException; payload that is not JSON 400
  InvalidRequestContentException; over the concurrency limit 429 TooManyRequestsException;
  an InvocationType or LogType outside the model's values, or a FunctionName that breaks its
  pattern (`a%2Fb`), 400 ValidationException (checked for every provider against botocore's
  model in `localcloud/protocols/validation.py`); a body over 6 MB is refused by the edge
  before it is read.
- Logs: group `/aws/lambda/<name>`, one stream per worker, START / END / REPORT lines around
  the handler's own output. Metrics in AWS/Lambda by FunctionName: Invocations, Errors,
  Duration, Throttles, ConcurrentExecutions
  (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html).

Where the local cloud differs from AWS:
- Code runs as a local process on the local cloud's Python (zip) or on the image's process
  runtime environment (image), not in a Firecracker micro-VM: no memory limit is enforced,
  MemorySize only shows in the environment and the REPORT line, and the interpreter is the
  machine's Python whatever the function's Runtime or base image says.
- Execution environments are forked from a process per image runtime (one per Python,
  working directory, task root and interpreter variables, `forkserver.py`) that has already
  imported the runtime interface client and the third-party packages the handler module
  imports at top level; the handler's own modules and its init run in each environment, as
  on AWS. A preloaded package that reads a function variable when imported sees the image's
  value, not the function's; a package that starts threads or opens sockets at import
  (numpy) is imported by each environment itself; environments of one image share Python's
  hash seed. The runtime interface client waits for the next invocation on its main thread
  (for python3.12+ labels AWS's starts a thread per poll, to handle shutdown signals while
  idle: a local environment is only ever killed).
- IAM is not enforced: the worker's credentials are dummies the local cloud accepts, and it
  reaches the local cloud through AWS_ENDPOINT_URL. SSL_CERT_FILE, REQUESTS_CA_BUNDLE and
  AWS_CA_BUNDLE name a bundle of the machine's CAs plus the local cloud's own CA, so handler
  code verifies the local TLS endpoints (RDS Proxy) unchanged; the function's own variables
  of those names win.
- Under the AWS timing profile (`localcloud/timing.py`), CreateFunction refuses a role that
  is younger than IAM's propagation delay, as AWS does ("cannot be assumed by Lambda").
- Max Memory Used is the worker process's peak resident memory (Linux VmHWM); Billed
  Duration is Duration rounded up to the millisecond (the INIT phase is not billed).
- Per-function concurrency without reserved concurrency is capped at
  LOCALCLOUD_LAMBDA_MAX_CONCURRENCY (default 10), not the account's 1,000.
- Idle workers are stopped after LOCALCLOUD_LAMBDA_IDLE_SECONDS (default 300); Event retry
  delays can be shortened with LOCALCLOUD_LAMBDA_RETRY_DELAYS (default "60,120").
- A failed init is reported as the invocation's error with START/END/REPORT lines (Status:
  error); AWS also writes an INIT_REPORT line and retries init within the invocation.
- VpcConfig is checked (subnets and security groups must exist in one VPC) and reported with
  that VPC's id, but a VPC function reaches everything on the machine as any other, and no
  network interfaces are created: the function is Active at once (AWS: Pending while its
  interfaces are made) and its security groups can be deleted right after a detach. Under
  the AWS timing profile it gets interfaces on AWS's schedule (`interfaces.py`).
- Layers, aliases, versions other than $LATEST, provisioned concurrency, SnapStart,
  destinations and dead-letter queues are not run.
- An invocation's log lines are written to CloudWatch Logs by a background thread within
  0.2 s; any request to a moto-served service writes what is queued first, so a read of the
  logs after an invoke has answered sees its lines.
- Each log stream keeps its latest 10,000 events (LOCALCLOUD_LOG_EVENTS_PER_STREAM); AWS
  keeps every event for the log group's retention period.
- Event source mappings (`event_sources/`) read DynamoDB streams only (not SQS or Kinesis),
  one shard per stream; states settle after LOCALCLOUD_ESM_TRANSITION_SECONDS (default 1);
  a failed batch is retried after LOCALCLOUD_ESM_RETRY_SECONDS (default 0.5; AWS backs off);
  a tumbling window's state is not limited to 1 MB (no window ends early); the execution
  role's stream and destination permissions are not checked (IAM is not enforced); a
  mapping lives in the daemon's memory and is gone after a restart, with its position in
  the stream.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from ..context import CloudContext
from ..iam.propagation import role_propagated
from ..protocols import ServiceError, unless_missing
from ..registry import Provider, RequestContext
from . import vpc
from .event_queue import EventQueue
from .event_sources import EventSourceMappings
from .functions import FunctionSpec, function_exists, remove_extracted_code, resolve, resolved_image
from .interfaces import VpcInterfaces, vpc_changed
from .invocations import (
    TAIL_BYTES,
    Result,
    check_json,
    check_size,
    client_context,
    invoke_data,
    result_of,
)
from .pool import Pools
from .runtime_api import Invocation
from .worker import Worker


class LambdaProvider(Provider):
    """Invoke for functions whose configuration moto keeps."""

    service = "lambda"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.pools = Pools(
            cloud.endpoint_url,
            idle_seconds=float(os.environ.get("LOCALCLOUD_LAMBDA_IDLE_SECONDS", 300)),
            max_concurrency=int(os.environ.get("LOCALCLOUD_LAMBDA_MAX_CONCURRENCY", 10)),
            exists=lambda arn: function_exists(cloud.moto, arn),
        )
        delays = os.environ.get("LOCALCLOUD_LAMBDA_RETRY_DELAYS", "60,120")
        self.events = EventQueue(self, [float(d) for d in delays.split(",")])
        self.event_sources = EventSourceMappings(cloud, self)
        self.interfaces = VpcInterfaces(cloud.moto, cloud.timing)  # AWS timing profile only

    def Invoke(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Run the function: synchronously, as a queued event, or as a dry run."""
        invocation_type = params.get("InvocationType") or "RequestResponse"
        payload = params.get("Payload") or b""
        check_size(payload, invocation_type)
        spec = self.function_spec(params["FunctionName"], params.get("Qualifier"), context)
        self.interfaces.check_invoke(context, spec.name)
        if invocation_type == "DryRun":
            return {"StatusCode": 204}
        check_json(payload)
        if invocation_type == "Event":
            self.events.submit(spec, params, context)
            return {"StatusCode": 202}
        result = self.run(spec, payload or b"{}", context, client_context(params))
        if result is None:
            raise ServiceError(
                "TooManyRequestsException",
                "Rate Exceeded.",
                429,
                fields={"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
            )
        response: dict[str, Any] = {
            "StatusCode": 200,
            "Payload": result.body,
            "ExecutedVersion": spec.version,
        }
        if result.function_error:
            response["FunctionError"] = "Unhandled"
        if params.get("LogType") == "Tail":
            tail = result.log_text.encode()[-TAIL_BYTES:]
            response["LogResult"] = base64.b64encode(tail).decode()
        return response

    def run(
        self,
        spec: FunctionSpec,
        payload: bytes,
        context: RequestContext,
        client_context: str | None = None,
    ) -> Result | None:
        """One invocation on a warm or new worker; None when throttled."""
        acquired = self.pools.acquire(spec, context.region)
        if acquired is None:
            self._metric(spec, "Throttles", 1, "Count")
            return None
        worker, cold, concurrency = acquired
        invocation = Invocation(
            request_id=context.request_id,
            payload=payload,
            function_arn=spec.arn,
            timeout_s=spec.timeout_s,
            client_context=client_context,
            trace_id=f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Sampled=0",
        )
        try:
            outcome = worker.invoke(invocation)
        finally:
            self.pools.release(spec, worker)
        result = result_of(spec, invocation.request_id, outcome)
        self._write_logs(spec, worker, context, result)
        self.cloud.publisher.record_with(
            "AWS/Lambda",
            invoke_data,
            (spec.name, result.function_error, outcome.duration_ms, concurrency),
        )
        return result

    # ----- VpcConfig: moto stores it; the checks and the VPC id are the local cloud's ----

    def CreateFunction(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's function, its VpcConfig checked and reported with the subnets' VPC."""
        role = params.get("Role") or ""
        if not role_propagated(self.cloud.moto, self.cloud.timing, context.account_id, role):
            # The AWS timing profile: a role created moments ago has not reached Lambda yet.
            raise ServiceError(
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
            )
        vpc_id = vpc.check(self.cloud.moto, params.get("VpcConfig"), context.region)
        created = self._moto("CreateFunction", params, context)
        self.interfaces.attach(context, created["FunctionName"], params.get("VpcConfig"))
        return self.interfaces.patch(context, vpc.report(created, vpc_id))

    def UpdateFunctionConfiguration(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """moto's update; a new VpcConfig is checked, an empty one detaches the function."""
        before = None
        if "VpcConfig" in params:
            vpc.check(self.cloud.moto, params["VpcConfig"], context.region)
            name = {"FunctionName": params["FunctionName"]}
            before = self._moto("GetFunctionConfiguration", name, context).get("VpcConfig") or {}
        updated = self._moto("UpdateFunctionConfiguration", params, context)
        if before is not None and vpc_changed(before, params["VpcConfig"]):
            self.interfaces.updating(context, updated["FunctionName"])
            self.interfaces.attach(context, updated["FunctionName"], params["VpcConfig"])
        return self._with_vpc(updated, context)

    def DeleteFunction(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto deletes it; its network interfaces are released later (AWS timing profile)."""
        result = self._moto("DeleteFunction", params, context)
        if not params.get("Qualifier"):
            self.interfaces.release(context, params["FunctionName"])
        return result

    def AddPermission(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Stored (REST APIs check it; HTTP APIs do not); a StatementId in use is a 409."""
        sid = params["StatementId"]
        if sid in self._statement_ids(params["FunctionName"], params.get("Qualifier"), context):
            raise ServiceError(  # moto would add a second statement of that id
                "ResourceConflictException",
                f"The statement id ({sid}) provided already exists. Please provide a new "
                "statement id, or remove the existing statement.",
                409,
            )
        return self._moto("AddPermission", params, context)

    def _statement_ids(
        self, function: str, qualifier: str | None, context: RequestContext
    ) -> set[str]:
        """The Sids of the function's resource policy (none without a policy)."""
        query = {"FunctionName": function, **({"Qualifier": qualifier} if qualifier else {})}
        # No policy, or no function (AddPermission then answers moto's own 404): no Sids.
        found = unless_missing(
            lambda: self._moto("GetPolicy", query, context), "ResourceNotFoundException"
        )
        policy = json.loads(found["Policy"]) if found else {}
        return {statement.get("Sid", "") for statement in policy.get("Statement", [])}

    def GetFunction(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's function with its VpcConfig's real VPC id and a well-formed ResolvedImageUri."""
        result = self._moto("GetFunction", params, context)
        self._with_vpc(result.get("Configuration") or {}, context)
        return resolved_image(result, self.cloud.moto, context.region, context.account_id)

    def GetFunctionConfiguration(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """moto's configuration with its VpcConfig's real VPC id."""
        return self._with_vpc(self._moto("GetFunctionConfiguration", params, context), context)

    def _with_vpc(self, configuration: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        stored = configuration.get("VpcConfig")
        self.interfaces.patch(context, configuration)
        return vpc.report(configuration, vpc.vpc_of(self.cloud.moto, stored, context.region))

    def _moto(self, operation: str, params: dict[str, Any], context: RequestContext) -> Any:
        return self.cloud.moto.call("lambda", operation, params, context.region)

    def function_spec(
        self, name: str, qualifier: str | None, context: RequestContext
    ) -> FunctionSpec:
        """The function's current spec from moto (404 if unknown)."""
        return resolve(
            self.cloud.moto,
            self.cloud.state_dir,
            context.region,
            context.account_id,
            name,
            qualifier,
        )

    def _metric(self, spec: FunctionSpec, name: str, value: float, unit: str) -> None:
        """Publish one AWS/Lambda sample for the function (batched once a second)."""
        dimensions = {"FunctionName": spec.name}
        self.cloud.publisher.record("AWS/Lambda", name, value, dimensions, unit)

    def _write_logs(
        self, spec: FunctionSpec, worker: Worker, context: RequestContext, result: Result
    ) -> None:
        """Queue the invocation's log lines for its worker's stream (written off this path;
        a CloudWatch Logs request first writes what is queued, see motogateway/logs.py)."""
        key = (context.account_id, context.region, f"/aws/lambda/{spec.name}", worker.log_stream)
        self.cloud.logs.add_many(key, result.log_text.splitlines())

    # ----- event source mappings (DynamoDB streams): event_sources/ ---------------------

    def CreateEventSourceMapping(self, params: dict[str, Any], context: RequestContext) -> Any:
        """A new mapping, 202 Creating."""
        return self.event_sources.create(params, context)

    def GetEventSourceMapping(self, params: dict[str, Any], context: RequestContext) -> Any:
        """One mapping."""
        return self.event_sources.get(params, context)

    def ListEventSourceMappings(self, params: dict[str, Any], context: RequestContext) -> Any:
        """Mappings of a stream or function."""
        return self.event_sources.list(params, context)

    def UpdateEventSourceMapping(self, params: dict[str, Any], context: RequestContext) -> Any:
        """Change or enable/disable a mapping, 202."""
        return self.event_sources.update(params, context)

    def DeleteEventSourceMapping(self, params: dict[str, Any], context: RequestContext) -> Any:
        """Delete a mapping, 202 Deleting."""
        return self.event_sources.delete(params, context)

    def reset(self) -> None:
        """Stop every worker, drop queued events and extracted code."""
        self.event_sources.clear()
        self.events.clear()
        self.interfaces.clear()
        self.pools.stop_all()
        remove_extracted_code(self.cloud.state_dir)

    def shutdown(self) -> None:
        """Stop the event queue and every worker."""
        self.event_sources.close()
        self.events.close()
        self.interfaces.close()
        self.pools.close()

    def status(self) -> dict[str, Any]:
        """Workers and queued events."""
        return {
            **self.pools.status(),
            "queued events": self.events.size(),
            **self.event_sources.status(),
        }
