"""One invocation's bookkeeping: the request checks, the caller's result, its log and metrics.

The result and log follow AWS
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): a function error is the
error document in the payload; the log has START / END / REPORT lines around the handler's
own output, the REPORT fields in AWS's order; the metrics are AWS/Lambda's by FunctionName
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from ..metrics.publisher import DataPoint
from ..protocols import ServiceError
from .functions import FunctionSpec
from .worker import Outcome

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


def check_size(payload: bytes, invocation_type: str) -> None:
    """Refuse a payload over 6 MB (sync) or 1 MB (Event), as Lambda does."""
    limit = EVENT_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
    if len(payload) > limit:
        raise ServiceError(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
            413,
        )


def check_json(payload: bytes) -> None:
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


def client_context(params: dict[str, Any]) -> str | None:
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


def result_of(spec: FunctionSpec, request_id: str, outcome: Outcome) -> Result:
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


def invoke_data(
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
