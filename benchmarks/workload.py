"""The workload any AWS-compatible endpoint can serve: Lambda zip functions and DynamoDB items.

`make bench` runs it against the local cloud; `--compare URL` runs the same calls against
another endpoint too. Every answer is checked (the invoke's payload, the item read back), so
an endpoint that answers fast with an error does not look fast: a figure it cannot serve
carries the error instead of a number. Clients do not retry, so a throttled or failed call
counts as an error in the rates.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import time
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from .timing import timings

ECHO = "def handler(event, context):\n    return {'ok': True}\n"
PRINTER = "def handler(event, context):\n    print('processing', event)\n    return {'ok': True}\n"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ],
}
# No retries: a throttled or failed call is an error of the figure, not a hidden slow call.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=16,
)


@dataclass
class Endpoint:
    """An AWS-compatible endpoint: a name for the tables, a boto3 session and its URL."""

    name: str
    session: boto3.Session
    url: str
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A shared client of `service` on this endpoint."""
        if service not in self._clients:
            self._clients[service] = self.new_client(service)
        return self._clients[service]

    def new_client(self, service: str) -> Any:
        """A client of its own (one per concurrent caller, as separate programs would have)."""
        return self.session.client(service, endpoint_url=self.url, config=CLIENT_CONFIG)


@dataclass
class Sizes:
    """How many calls each figure makes; the tests use small ones."""

    latency_calls: int = 300
    cold_starts: int = 10
    callers: int = 8
    per_caller: int = 100
    rate_rounds: int = 3


def _error(error: Exception) -> str:
    """A short description of why a figure could not be measured."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:160]


def attempt(results: dict[str, Any], key: str, measure: Callable[[], Any]) -> None:
    """results[key] = measure(), or {'error': ...} when the endpoint cannot serve it."""
    try:
        results[key] = measure()
    except Exception as error:  # any failure is the figure's answer
        results[key] = {"error": _error(error)}


def dynamodb_figures(endpoint: Endpoint, sizes: Sizes) -> dict[str, Any]:
    """GetItem and PutItem p50/p99 on a one-key table."""
    ddb = endpoint.client("dynamodb")
    table = f"bench-{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {}
    try:
        create_table(ddb, table)
    except Exception as error:
        failed = {"error": _error(error)}
        return {"dynamodb_get": failed, "dynamodb_put": failed}

    counter = iter(range(10**9))

    def put() -> None:
        put_item(ddb, table, f"p{next(counter)}")

    attempt(
        results, "dynamodb_get", lambda: timings(lambda: get_item(ddb, table), sizes.latency_calls)
    )

    def put_figure() -> dict[str, float]:
        figure = timings(put, sizes.latency_calls)
        _read_back(ddb, table)
        return figure

    attempt(results, "dynamodb_put", put_figure)
    with contextlib.suppress(Exception):  # cleanup of a throwaway table
        ddb.delete_table(TableName=table)
    return results


def create_table(ddb: Any, table: str) -> None:
    """A one-key table holding the item GetItem reads."""
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    ddb.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ddb.put_item(TableName=table, Item={"id": {"S": "k"}, "v": {"N": "1"}})


def get_item(ddb: Any, table: str) -> None:
    """One GetItem of the table's item, its answer checked."""
    item = ddb.get_item(TableName=table, Key={"id": {"S": "k"}}).get("Item")
    if item != {"id": {"S": "k"}, "v": {"N": "1"}}:
        raise RuntimeError(f"GetItem answered {item!r}")


def put_item(ddb: Any, table: str, key: str) -> None:
    """One PutItem of a small item."""
    ddb.put_item(TableName=table, Item={"id": {"S": key}, "v": {"N": "2"}})


def _read_back(ddb: Any, table: str) -> None:
    """An item written by the PutItem figure, read back: the writes were real."""
    first = ddb.get_item(TableName=table, Key={"id": {"S": "p0"}}, ConsistentRead=True)
    if first.get("Item", {}).get("v") != {"N": "2"}:
        raise RuntimeError("an item written by PutItem was not read back")


def lambda_figures(endpoint: Endpoint, sizes: Sizes) -> dict[str, Any]:
    """Cold start, warm invoke p50/p99, invokes/s with concurrent callers (echo and printing)."""
    lam = endpoint.client("lambda")
    suffix = uuid.uuid4().hex[:8]
    echo, printer = f"bench-echo-{suffix}", f"bench-printer-{suffix}"
    results: dict[str, Any] = {}
    try:
        role = endpoint.client("iam").create_role(
            RoleName=f"bench-{suffix}", AssumeRolePolicyDocument=json.dumps(TRUST)
        )["Role"]["Arn"]
        for name, code in ((echo, ECHO), (printer, PRINTER)):
            create_function(lam, name, role, code)
    except Exception as error:
        failed = {"error": _error(error)}
        keys = ("lambda_cold_start", "lambda_warm", "lambda_rate_echo", "lambda_rate_printing")
        return dict.fromkeys(keys, failed)
    attempt(results, "lambda_cold_start", lambda: _cold_starts(lam, echo, sizes.cold_starts))
    attempt(results, "lambda_warm", lambda: timings(lambda: invoke(lam, echo), sizes.latency_calls))
    for key, name in (("lambda_rate_echo", echo), ("lambda_rate_printing", printer)):
        attempt(results, key, lambda name=name: invoke_rate(endpoint, name, sizes))
    for name in (echo, printer):
        with contextlib.suppress(Exception):  # cleanup of a throwaway function
            lam.delete_function(FunctionName=name)
    with contextlib.suppress(Exception):
        endpoint.client("iam").delete_role(RoleName=f"bench-{suffix}")
    return results


def create_function(lam: Any, name: str, role: str, code: str) -> None:
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", code)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": package.getvalue()},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def invoke(lam: Any, name: str) -> None:
    """One synchronous invoke, its answer checked."""
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    payload = answer["Payload"].read()
    if answer.get("FunctionError") or json.loads(payload) != {"ok": True}:
        raise RuntimeError(f"invoke answered {answer.get('FunctionError')} {payload[:100]!r}")


def _cold_starts(lam: Any, name: str, count: int) -> dict[str, Any]:
    """First invokes after a configuration change, which retires the warm environment."""
    samples = []
    for n in range(count):
        lam.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"RUN": f"{n}-{uuid.uuid4().hex[:4]}"}}
        )
        lam.get_waiter("function_updated_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        started = time.perf_counter()
        invoke(lam, name)
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "n": count}


def invoke_rate(endpoint: Endpoint, name: str, sizes: Sizes) -> dict[str, Any]:
    """Successful invokes per second with concurrent callers: the median of several rounds."""
    clients = [endpoint.new_client("lambda") for _ in range(sizes.callers)]
    errors: list[str] = []

    def caller(client: Any, calls: int) -> None:
        for _ in range(calls):
            try:
                invoke(client, name)
            except Exception as error:  # counted, the round goes on
                errors.append(_error(error))

    def round_of(calls: int) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(sizes.callers) as pool:
            list(pool.map(lambda c: caller(c, calls), clients))
        return time.perf_counter() - started

    round_of(max(1, sizes.per_caller // 5))  # warm: as many environments as callers
    errors.clear()
    rates = []
    for _ in range(sizes.rate_rounds):
        failed_before = len(errors)
        took = round_of(sizes.per_caller)
        done = sizes.callers * sizes.per_caller - (len(errors) - failed_before)
        rates.append(done / took)
    total = sizes.callers * sizes.per_caller * sizes.rate_rounds
    if len(errors) == total:
        raise RuntimeError(f"every invoke failed: {errors[0]}")
    return {
        "per_s": round(statistics.median(rates), 1),
        "rounds": [round(r, 1) for r in rates],
        "callers": sizes.callers,
        "n": total,
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
    }
