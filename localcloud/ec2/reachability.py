"""Which public AWS endpoints a caller inside a VPC can reach, as AWS enforces it.

A Lambda function attached to a VPC has no route to the internet, and so none to public AWS
endpoints, unless its VPC has a NAT gateway or an interface VPC endpoint (with private DNS)
for that service; DynamoDB and S3 also accept gateway endpoints
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html,
https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html).
Without one, the SDK's connection attempt goes unanswered until it times out, which in a
function usually means the function's own timeout.

Each function's worker signs its calls with a session token that names the function
(`function_session_token`), so the edge knows the caller. For a function in a VPC without a
route to the service, `VpcRoutes.hold` keeps the request unanswered until the caller gives
up. Callers outside a VPC (the notebook, functions without VpcConfig) are unaffected.

Where the local cloud differs from AWS:
- The connection is accepted and the request is then left unanswered: the SDK reports a
  read timeout (after its read_timeout, 60 s by default) where AWS's would be a connect
  timeout. Either way a function with a shorter timeout times out first.
- A NAT gateway anywhere in the VPC counts as a route; route tables, subnets of the
  endpoint and security groups are not checked. ECS tasks are not held (awsvpc tasks with a
  public IP can reach AWS endpoints through an internet gateway).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from ..motogateway import MotoGateway
from ..protocols import ServiceError

log = logging.getLogger("localcloud.ec2")

FUNCTION_TOKEN_PREFIX = "LCFN-"  # session tokens of Lambda workers: the prefix, then the name
HOLD_LIMIT_S = 900.0  # Lambda's longest timeout: no caller waits longer
CACHE_S = 2.0  # how long a decision is reused (a function may call AWS in a tight loop)
GATEWAY_SERVICES = {"s3", "dynamodb"}
_ENDPOINT_NAMES = {"ecr": "ecr.api"}  # signing name -> endpoint service name, where they differ


def function_session_token(function_name: str) -> str:
    """The session token a function's worker signs with: it tells the edge who is calling."""
    return FUNCTION_TOKEN_PREFIX + function_name


class VpcRoutes:
    """Decides whether a request's caller can reach the service, and holds it if not."""

    def __init__(self, moto: MotoGateway) -> None:
        self.moto = moto
        self._cache: dict[tuple[str, str, str], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def hold(self, environ: Mapping[str, Any], region: str, signing_name: str) -> bool:
        """True after holding a request whose caller has no route (it was never answered)."""
        function = _caller_function(environ)
        if function is None or self.reachable(function, region, signing_name):
            return False
        log.info("function %s has no route to %s: holding its request", function, signing_name)
        _wait_for_disconnect(environ.get("werkzeug.socket"))
        return True

    def reachable(self, function: str, region: str, service: str) -> bool:
        """True unless the function is in a VPC without a NAT gateway or endpoint for service."""
        key = (function, region, service)
        now = time.monotonic()
        with self._lock:
            found = self._cache.get(key)
        if found is not None and now - found[0] < CACHE_S:
            return found[1]
        vpc = self._function_vpc(function, region)
        answer = not vpc or self._has_route(vpc, region, service)
        with self._lock:
            self._cache[key] = (now, answer)
        return answer

    def _function_vpc(self, function: str, region: str) -> str:
        try:
            config = self.moto.call(
                "lambda", "GetFunctionConfiguration", {"FunctionName": function}, region
            )
            subnets = (config.get("VpcConfig") or {}).get("SubnetIds") or []
            if not subnets:
                return ""
            found = self.moto.call("ec2", "DescribeSubnets", {"SubnetIds": subnets[:1]}, region)
            return found["Subnets"][0]["VpcId"]
        except (ServiceError, KeyError, IndexError):
            return ""  # a function being deleted, or gone: never hold its calls

    def _has_route(self, vpc: str, region: str, service: str) -> bool:
        in_vpc = {"Name": "vpc-id", "Values": [vpc]}
        gateways = self.moto.call("ec2", "DescribeNatGateways", {"Filter": [in_vpc]}, region).get(
            "NatGateways", []
        )
        if any(g.get("State") in ("pending", "available") for g in gateways):
            return True
        name = f"com.amazonaws.{region}.{_ENDPOINT_NAMES.get(service, service)}"
        endpoints = self.moto.call(
            "ec2",
            "DescribeVpcEndpoints",
            {"Filters": [in_vpc, {"Name": "service-name", "Values": [name]}]},
            region,
        ).get("VpcEndpoints", [])
        for endpoint in endpoints:
            if str(endpoint.get("State", "available")).lower() not in ("available", "pending"):
                continue
            if endpoint.get("VpcEndpointType") == "Gateway" and service in GATEWAY_SERVICES:
                return True
            if endpoint.get("VpcEndpointType") == "Interface" and endpoint.get("PrivateDnsEnabled"):
                return True
        return False


def _caller_function(environ: Mapping[str, Any]) -> str | None:
    """The function that signed the request, from its session token (None for others)."""
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
    if token is None:  # a presigned URL carries it in the query
        token = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Security-Token", [""])[0]
    if not token.startswith(FUNCTION_TOKEN_PREFIX):
        return None
    return token[len(FUNCTION_TOKEN_PREFIX) :] or None


def _wait_for_disconnect(sock: socket.socket | None) -> None:
    """Sleep until the client closes the connection (or HOLD_LIMIT_S passes)."""
    deadline = time.monotonic() + HOLD_LIMIT_S
    while time.monotonic() < deadline:
        if sock is None:
            time.sleep(1.0)
            continue
        with contextlib.suppress(OSError, ValueError):
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable and not sock.recv(1, socket.MSG_PEEK):
                return  # the caller gave up (its timeout) or its process ended
            if readable:
                time.sleep(0.5)  # bytes we do not read: do not spin on them
            continue
        return  # the socket is unusable: the caller is gone
