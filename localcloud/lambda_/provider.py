"""The Lambda provider: Invoke runs the function's real code in a local worker.

Everything else about functions (create, get, list, update, delete, permissions, event
invoke configs) stays with moto; this provider reads the function from moto at each invoke.

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
import datetime as dt
import heapq
import json
import logging
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..context import CloudContext
from ..iam.propagation import role_propagated
from ..metrics.publisher import DataPoint
from ..protocols import ServiceError
from ..registry import Provider, RequestContext
from . import vpc
from .event_sources import EventSourceMappings
from .functions import FunctionSpec, function_exists, remove_extracted_code, resolve, resolved_image
from .interfaces import VpcInterfaces, vpc_changed
from .pool import Pools
from .runtime_api import Invocation
from .worker import Outcome, Worker

log = logging.getLogger("localcloud.lambda")

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # 6291456 bytes
EVENT_PAYLOAD_LIMIT = 1024 * 1024
TAIL_BYTES = 4096
_ERROR_TYPES = {"timeout": "Sandbox.Timedout", "exit": "Runtime.ExitError"}


@dataclass
class Result:
    """One finished invocation: what the caller gets and what the log says."""

    body: bytes
    function_error: bool
    log_text: str
    kind: str


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
        limit = EVENT_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(payload) > limit:
            raise ServiceError(
                "RequestEntityTooLargeException",
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
                413,
            )
        spec = self.function_spec(params["FunctionName"], params.get("Qualifier"), context)
        self.interfaces.check_invoke(context, spec.name)
        if invocation_type == "DryRun":
            return {"StatusCode": 204}
        _check_json(payload)
        if invocation_type == "Event":
            self.events.submit(spec, params, context)
            return {"StatusCode": 202}
        result = self.run(spec, payload or b"{}", context, _client_context(params))
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
            trace_id=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
        )
        try:
            outcome = worker.invoke(invocation)
        finally:
            self.pools.release(spec, worker)
        result = _result(spec, invocation.request_id, outcome)
        self._write_logs(spec, worker, context, result)
        self.cloud.publisher.record_with(
            "AWS/Lambda",
            _invoke_data,
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
        """Append the invocation's log lines to its worker's stream at once, before answering."""
        self.cloud.logs.write(
            context.account_id,
            context.region,
            f"/aws/lambda/{spec.name}",
            worker.log_stream,
            result.log_text.splitlines(),
        )

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


def _result(spec: FunctionSpec, request_id: str, outcome: Outcome) -> Result:
    """The caller's payload and the invocation's log text, from a worker's outcome."""
    body = outcome.body
    if outcome.kind in _ERROR_TYPES:
        detail = (
            f"Task timed out after {spec.timeout_s:.2f} seconds"
            if outcome.kind == "timeout"
            else outcome.exit_detail
        )
        body = json.dumps(
            {
                "errorType": _ERROR_TYPES[outcome.kind],
                "errorMessage": f"RequestId: {request_id} Error: {detail}",
            }
        ).encode()
    lines = [*outcome.before_lines, f"START RequestId: {request_id} Version: {spec.version}"]
    lines += outcome.lines
    if outcome.kind == "timeout":
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines.append(f"{stamp} {request_id} Task timed out after {spec.timeout_s:.2f} seconds")
    lines.append(f"END RequestId: {request_id}")
    lines.append(_report(spec, request_id, outcome))
    return Result(
        body=body,
        function_error=outcome.kind != "ok",
        log_text="\n".join(lines) + "\n",
        kind=outcome.kind,
    )


def _report(spec: FunctionSpec, request_id: str, outcome: Outcome) -> str:
    """The REPORT line, fields in AWS's order, ending with a tab."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {outcome.duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(outcome.duration_ms))} ms",
        f"Memory Size: {spec.memory_mb} MB",
        f"Max Memory Used: {outcome.max_memory_mb} MB",
    ]
    if outcome.init_ms is not None:
        fields.append(f"Init Duration: {outcome.init_ms:.2f} ms")
    if outcome.kind == "timeout":
        fields.append("Status: timeout")
    elif outcome.kind in ("exit", "init_error"):
        error_type = "Runtime.ExitError"
        if outcome.kind == "init_error":
            error_type = json.loads(outcome.body or b"{}").get("errorType", "Runtime.Unknown")
        fields += ["Status: error", f"Error Type: {error_type}"]
    return "\t".join(fields) + "\t"


def _check_json(payload: bytes) -> None:
    """Lambda refuses a payload that is not JSON (an empty one stands for {})."""
    if not payload:
        return
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise ServiceError(
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {error}",
            400,
        ) from error


def _client_context(params: dict[str, Any]) -> str | None:
    """The decoded ClientContext (callers send it base64-encoded)."""
    encoded = params.get("ClientContext")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except ValueError as error:
        raise ServiceError(
            "InvalidRequestContentException", "Client context must be valid base64 JSON", 400
        ) from error


@dataclass(order=True)
class _QueuedEvent:
    due: float
    sequence: int
    spec: FunctionSpec = field(compare=False)
    payload: bytes = field(compare=False)
    context: RequestContext = field(compare=False)
    received: float = field(compare=False, default_factory=time.monotonic)
    attempts: int = field(compare=False, default=0)
    throttles: int = field(compare=False, default=0)


class EventQueue:
    """Asynchronous invocations: queued, run by background threads, retried as AWS does."""

    def __init__(self, provider: LambdaProvider, retry_delays: list[float], threads: int = 2):
        self.provider = provider
        self.retry_delays = retry_delays
        self._heap: list[_QueuedEvent] = []
        self._sequence = 0
        self._condition = threading.Condition()
        self._closed = False
        for n in range(threads):
            threading.Thread(target=self._serve, name=f"lambda-events-{n}", daemon=True).start()

    def submit(self, spec: FunctionSpec, params: dict[str, Any], context: RequestContext) -> None:
        """Queue an Event invocation."""
        self._push(_QueuedEvent(time.monotonic(), 0, spec, params.get("Payload") or b"{}", context))

    def size(self) -> int:
        """Events waiting to run."""
        with self._condition:
            return len(self._heap)

    def clear(self) -> None:
        """Drop every queued event."""
        with self._condition:
            self._heap.clear()

    def close(self) -> None:
        """Stop the background threads."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def _push(self, event: _QueuedEvent) -> None:
        with self._condition:
            self._sequence += 1
            event.sequence = self._sequence
            heapq.heappush(self._heap, event)
            self._condition.notify()

    def _next(self) -> _QueuedEvent | None:
        """The next due event (waiting for it), or None when closing."""
        with self._condition:
            while not self._closed:
                if self._heap and self._heap[0].due <= time.monotonic():
                    return heapq.heappop(self._heap)
                timeout = self._heap[0].due - time.monotonic() if self._heap else None
                self._condition.wait(timeout)
            return None

    def _serve(self) -> None:
        while (event := self._next()) is not None:
            try:
                self._run(event)
            except Exception:  # one bad event must not stop the queue
                log.exception("event invocation of %s failed", event.spec.name)

    def _run(self, event: _QueuedEvent) -> None:
        """Run one event; schedule its retry after an error or a throttle."""
        age = time.monotonic() - event.received
        if age > event.spec.max_event_age_s:
            log.warning("dropping event for %s: older than its maximum age", event.spec.name)
            return
        try:  # the function may have changed or gone since the event was queued
            spec = self.provider.function_spec(event.spec.arn, None, event.context)
        except ServiceError:
            log.warning("dropping event for %s: the function no longer exists", event.spec.name)
            return
        context = RequestContext(event.context.region, event.context.account_id)
        result = self.provider.run(spec, event.payload, context)
        if result is None:  # throttled: back off from 1 s up to 5 minutes
            event.throttles += 1
            event.due = time.monotonic() + min(300.0, 2.0 ** (event.throttles - 1))
            self._push(event)
        elif result.function_error and event.attempts < min(
            spec.max_retry_attempts, len(self.retry_delays)
        ):
            event.due = time.monotonic() + self.retry_delays[event.attempts]
            event.attempts += 1
            self._push(event)


def _invoke_data(
    function: str, error: bool, duration_ms: float, concurrency: int
) -> list[DataPoint]:
    """The AWS/Lambda data of one invocation (expanded on the publisher's thread)."""
    dimensions = {"FunctionName": function}
    return [
        ("Invocations", dimensions, 1, "Count"),
        ("Errors", dimensions, int(error), "Count"),
        ("Duration", dimensions, round(duration_ms, 2), "Milliseconds"),
        ("ConcurrentExecutions", dimensions, concurrency, "Count"),
    ]
