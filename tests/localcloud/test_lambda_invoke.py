"""The local Lambda service against a live local cloud: every Invoke behaviour, as on AWS.

Functions are small zip packages written here; the daemon runs with a 3 s idle timeout
and 1 s Event retry delays (tests/conftest.py), so reaping and retries can be watched.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import ZipFunctions
from polling import wait_until

import helpers

HANDLERS = textwrap.dedent(
    """
    import json, os, sys, time
    import boto3

    print("init output")

    def echo(event, context):
        print("event:", json.dumps(event))
        return {"event": event, "pid": os.getpid(), "memory": context.memory_limit_in_mb,
                "name": context.function_name, "left_ms": context.get_remaining_time_in_millis(),
                "colour": os.environ.get("COLOUR")}

    def fail(event, context):
        raise ValueError("asked to fail")

    def slow(event, context):
        time.sleep(event.get("seconds", 5))
        return {"pid": os.getpid()}

    def crash(event, context):
        os._exit(3)

    def huge(event, context):
        return "x" * (7 * 1024 * 1024)

    def table(event, context):
        # No endpoint in the code: AWS_ENDPOINT_URL, set by the local cloud, routes boto3.
        ddb = boto3.client("dynamodb")
        ddb.put_item(TableName=event["table"], Item={"id": {"S": event["id"]}})
        return ddb.get_item(TableName=event["table"], Key={"id": {"S": event["id"]}})["Item"]
    """
)


@pytest.fixture(scope="module")
def functions(
    module_lab: helpers.Lab, zip_functions: ZipFunctions
) -> tuple[helpers.Lab, Any, Callable[..., str]]:
    """The lab, its Lambda client, and create(handler, timeout=3, **settings) -> name."""

    def create(handler: str, timeout: int = 3, **extra: Any) -> str:
        created = zip_functions.create(
            {"handlers.py": HANDLERS},
            f"handlers.{handler}",
            Timeout=timeout,
            MemorySize=256,
            **extra,
        )
        return created["FunctionName"]

    return module_lab, module_lab.client("lambda"), create


def _invoke(client, name: str, payload: dict | None = None, **kwargs) -> tuple[dict, object]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kwargs)
    body = response["Payload"].read()
    try:
        return response, json.loads(body)
    except ValueError:
        return response, body


def _log_messages(lab, name: str) -> list[str]:
    """The function's log messages so far (none before its first invocation ends)."""
    logs = lab.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"] for e in events]


def test_payload_context_environment_and_warm_reuse(functions):
    lab, client, create = functions
    name = create("echo", Environment={"Variables": {"COLOUR": "teal"}})
    first, result = _invoke(client, name, {"n": 1})
    assert first["StatusCode"] == 200 and "FunctionError" not in first
    assert first["ExecutedVersion"] == "$LATEST"
    assert result["event"] == {"n": 1} and result["name"] == name
    assert result["memory"] == "256" and result["colour"] == "teal"
    assert 0 < result["left_ms"] <= 3000
    _, again = _invoke(client, name, {"n": 2})
    assert again["pid"] == result["pid"]  # the warm worker served the second invocation


def test_tail_logs_have_the_invocations_lines(functions):
    lab, client, create = functions
    name = create("echo")
    response, _ = _invoke(client, name, {"tail": True}, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {request_id} Version: $LATEST" in tail
    assert 'event: {"tail": true}' in tail
    assert f"END RequestId: {request_id}" in tail
    report = re.search(
        r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 256 MB\tMax Memory Used: [1-9]\d* MB\tInit Duration: [\d.]+ ms\t$",
        tail,
        re.MULTILINE,
    )
    assert report, tail  # the first invocation is a cold start: Init Duration, after memory
    big = "y" * 6000
    response, _ = _invoke(client, name, {"big": big}, LogType="Tail")
    assert len(base64.b64decode(response["LogResult"])) == 4096  # the last 4 KB only


def test_handler_exception_is_200_with_unhandled_and_the_error_document(functions):
    _, client, create = functions
    response, error = _invoke(client, create("fail"))
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "asked to fail"
    assert error["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert any("in fail" in frame for frame in error["stackTrace"])
    # The handler's file is named where Lambda keeps it, not where the local cloud does.
    frame = next(f for f in error["stackTrace"] if "in fail" in f)
    assert frame.startswith('  File "/var/task/'), frame
    response, _ = _invoke(client, create("fail"), LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert 'File "/var/task/' in tail


def test_timeout_kills_the_worker_and_the_next_invoke_starts_fresh(functions):
    lab, client, create = functions
    name = create("slow", timeout=1)
    started = time.monotonic()
    response, error = _invoke(client, name, {"seconds": 10})
    assert time.monotonic() - started < 5
    request_id = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    response, result = _invoke(client, name, {"seconds": 0})
    assert "FunctionError" not in response and result["pid"] > 0
    assert any("Status: timeout" in m for m in _log_messages(lab, name))


def test_runtime_exit_import_error_and_oversized_response(functions):
    _, client, create = functions
    response, error = _invoke(client, create("crash"))
    request_id = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 3",
    }
    response, error = _invoke(client, create("missing_handler_module_is_fine_here"))
    assert error["errorType"] == "Runtime.HandlerNotFound"
    broken = create("echo")
    client.update_function_configuration(FunctionName=broken, Handler="nosuchmodule.handler")
    response, error = _invoke(client, broken)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError" and error["requestId"] == ""
    assert "No module named 'nosuchmodule'" in error["errorMessage"]
    response, error = _invoke(client, create("huge"))
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Function.ResponseSizeTooLarge"


def test_event_is_202_and_runs_in_the_background_with_retries(functions):
    lab, client, create = functions
    ok, failing = create("echo"), create("fail")
    assert (
        client.invoke(FunctionName=ok, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    )
    assert client.invoke(FunctionName=failing, InvocationType="Event")["StatusCode"] == 202

    def attempts() -> list[str] | None:
        """The failing function's START lines, once there are three and `ok` has run."""
        starts = [m for m in _log_messages(lab, failing) if m.startswith("START")]
        ok_ended = any(m.startswith("END") for m in _log_messages(lab, ok))
        return starts if len(starts) >= 3 and ok_ended else None

    starts = wait_until(attempts, what="three attempts and the other event", timeout=15)
    assert len(starts) == 3  # the first attempt and AWS's two retries
    time.sleep(2.5)
    assert len([m for m in _log_messages(lab, failing) if m.startswith("START")]) == 3


def test_dry_run_unknown_function_and_bad_requests(functions):
    _, client, create = functions
    name = create("echo")
    assert client.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName="pytest-no-such-function")
    error = missing.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["Error"]["Message"].endswith("function:pytest-no-such-function:$LATEST")
    with pytest.raises(ClientError) as bad_json:
        client.invoke(FunctionName=name, Payload=b"{not json")
    assert bad_json.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as too_big:
        client.invoke(FunctionName=name, Payload=b'"' + b"z" * (6 * 1024 * 1024) + b'"')
    assert too_big.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert too_big.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


def test_reserved_concurrency_zero_throttles_with_429(functions):
    _, client, create = functions
    name = create("echo")
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as throttled:
        client.invoke(FunctionName=name)
    error = throttled.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"]["Code"] == "TooManyRequestsException"


def test_concurrent_invokes_start_a_second_worker_then_reuse_them(functions):
    _, client, create = functions
    name = create("slow")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: _invoke(client, name, {"seconds": 0.6})[1], range(2)))
    pids = {r["pid"] for r in results}
    assert len(pids) == 2
    _, later = _invoke(client, name, {"seconds": 0})
    assert later["pid"] in pids


def test_updates_start_fresh_workers_and_idle_workers_are_reaped(functions):
    lab, client, create = functions
    name = create("echo")
    _, first = _invoke(client, name)
    client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"COLOUR": "red"}}
    )
    _, updated = _invoke(client, name)
    assert updated["pid"] != first["pid"] and updated["colour"] == "red"
    time.sleep(4.5)  # idle timeout 3 s, reaper every 0.75 s
    _, reaped = _invoke(client, name)
    assert reaped["pid"] != updated["pid"]
    inits = [m for m in _log_messages(lab, name) if "Init Duration" in m]
    assert len(inits) == 3  # three cold starts: new function, update, after reaping


def test_handler_uses_dynamodb_with_plain_boto3(functions):
    lab, client, create = functions
    table = helpers.dynamodb.ensure_table(lab, "00", "fromlambda")["TableName"]
    response, item = _invoke(client, create("table"), {"table": table, "id": "from-lambda"})
    assert "FunctionError" not in response, item
    assert item == {"id": {"S": "from-lambda"}}
    stored = lab.client("dynamodb").get_item(TableName=table, Key={"id": {"S": "from-lambda"}})
    assert stored["Item"] == {"id": {"S": "from-lambda"}}
    helpers.cleanup.teardown(lab, pattern="00", quiet=True)


def test_logs_streams_and_metrics(functions):
    lab, client, create = functions
    name = create("echo")
    for n in range(3):
        _invoke(client, name, {"n": n})
    _invoke(client, create("fail"))
    streams = lab.client("logs").describe_log_streams(logGroupName=f"/aws/lambda/{name}")
    stream = streams["logStreams"][0]["logStreamName"]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream)
    messages = _log_messages(lab, name)
    assert messages[0] == "init output"  # printed during init, before the first START
    assert sum(m.startswith("REPORT") for m in messages) == 3
    now = dt.datetime.now(dt.UTC)
    stats = lab.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Invocations",
        Statistics=["Sum"],
        Period=3600,
        Dimensions=[{"Name": "FunctionName", "Value": name}],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(hours=1),
    )
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 3
    durations = lab.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Statistics=["SampleCount"],
        Period=3600,
        Dimensions=[{"Name": "FunctionName", "Value": name}],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(hours=1),
    )
    assert durations["Datapoints"][0]["Unit"] == "Milliseconds"
