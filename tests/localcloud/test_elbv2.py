"""The local Application Load Balancer on the live local cloud: routing, health, errors, metrics.

Targets are small HTTP servers started by the tests on 127.0.0.1; they answer /health
(200, or 500 when switched) and echo every other request as JSON. Health checks run every
5 s (the AWS minimum) with thresholds of 2, so state changes are awaited by polling with a
deadline; nothing here asserts how long anything takes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import DefaultNetwork
from polling import wait_until

import helpers

AWS_503 = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"
)
AWS_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
HEALTH = {
    "HealthCheckPath": "/health",
    "HealthCheckIntervalSeconds": 5,
    "HealthCheckTimeoutSeconds": 2,
    "HealthyThresholdCount": 2,
    "UnhealthyThresholdCount": 2,
}


class TargetServer:
    """A target on 127.0.0.1: /health answers 200 (or 500), other paths echo the request."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True
        self.connections: set[socket.socket] = set()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                target.connections.add(self.connection)

            def _answer(self) -> None:
                if self.path == "/health":
                    status = 200 if target.healthy else 500
                    self._send(status, b"ok" if status == 200 else b"broken")
                    return
                if self.path == "/stream":  # a chunked response
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("X-Served-By", target.name)
                    self.end_headers()
                    for piece in (b"one,", b"two,", b"three"):
                        self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self._send(200, json.dumps(self._echo()).encode(), "application/json")

            def _echo(self) -> dict[str, Any]:
                if "chunked" in self.headers.get("Transfer-Encoding", ""):
                    body = b""
                    while size := int(self.rfile.readline().strip(), 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return {
                    "target": target.name,
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(),
                }

            def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Served-By", target.name)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening and drop open connections: the target is down."""
        self.server.shutdown()
        self.server.server_close()
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None):
    """One request on a fresh connection: (status, headers, body)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def echo(url: str, **kwargs: Any) -> dict[str, Any]:
    """A request that a target answers with its echo."""
    status, _, body = fetch(url, **kwargs)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def network(module_lab: helpers.Lab, default_network: DefaultNetwork) -> Iterator[dict[str, Any]]:
    """Two default-VPC subnets and a security group for the test load balancers."""
    ec2 = module_lab.client("ec2")
    vpc = default_network.vpc_id
    group = ec2.create_security_group(
        GroupName=f"pytest-alb-{uuid.uuid4().hex[:8]}", Description="test ALB", VpcId=vpc
    )["GroupId"]
    yield {"subnets": default_network.subnet_ids[:2], "vpc": vpc, "security_group": group}
    ec2.delete_security_group(GroupId=group)


class Alb:
    """A load balancer with a port-80 listener and target groups; deleted on exit."""

    def __init__(self, lab: helpers.Lab, network: dict[str, Any]) -> None:
        self.lab, self.network = lab, network
        self.elbv2 = lab.client("elbv2")
        self.groups: list[str] = []
        self.listeners: list[str] = []
        self.balancer: dict[str, Any] = {}

    def target_group(self, delay: int = 1, **overrides: Any) -> str:
        """A new ip target group (HTTP, health checks every 5 s) with a short drain delay."""
        arn = self.elbv2.create_target_group(
            Name=f"pytest-tg-{uuid.uuid4().hex[:8]}",
            Protocol="HTTP",
            Port=8080,
            VpcId=self.network["vpc"],
            TargetType="ip",
            **{**HEALTH, **overrides},
        )["TargetGroups"][0]["TargetGroupArn"]
        self.groups.append(arn)
        self.elbv2.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}],
        )
        return arn

    def create(self, default_group: str | None = None) -> str:
        """The load balancer and its port-80 listener; returns the listener's local URL."""
        self.balancer = self.elbv2.create_load_balancer(
            Name=f"pytest-alb-{uuid.uuid4().hex[:8]}",
            Subnets=self.network["subnets"],
            SecurityGroups=[self.network["security_group"]],
            Type="application",
        )["LoadBalancers"][0]
        self.listen(80, default_group)
        return self.lab.url_for(self.balancer)

    def listen(self, port: int, default_group: str | None) -> str:
        """Add a listener forwarding to a group (or answering 404 without one)."""
        action = (
            {"Type": "forward", "TargetGroupArn": default_group}
            if default_group
            else {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        )
        arn = self.elbv2.create_listener(
            LoadBalancerArn=self.balancer["LoadBalancerArn"],
            Protocol="HTTP",
            Port=port,
            DefaultActions=[action],
        )["Listeners"][0]["ListenerArn"]
        self.listeners.append(arn)
        return arn

    def register(self, group: str, *targets: TargetServer) -> None:
        """Register test servers as (127.0.0.1, port) targets."""
        self.elbv2.register_targets(
            TargetGroupArn=group, Targets=[{"Id": "127.0.0.1", "Port": t.port} for t in targets]
        )

    def health(self, group: str) -> dict[int, dict[str, Any]]:
        """TargetHealth by target port."""
        found = self.elbv2.describe_target_health(TargetGroupArn=group)
        return {d["Target"]["Port"]: d["TargetHealth"] for d in found["TargetHealthDescriptions"]}

    def wait_state(self, group: str, target: TargetServer, state: str) -> dict[str, Any]:
        """Poll describe_target_health until the target is in the state."""
        return wait_until(
            lambda: (h := self.health(group).get(target.port)) and h["State"] == state and h,
            what=f"{target.name} {state}",
            timeout=45,
            interval=0.25,
        )

    def delete(self) -> None:
        """Delete listeners, the load balancer and the target groups."""
        for arn in self.listeners:
            with contextlib.suppress(Exception):
                self.elbv2.delete_listener(ListenerArn=arn)
        if self.balancer:
            self.elbv2.delete_load_balancer(LoadBalancerArn=self.balancer["LoadBalancerArn"])
        for arn in self.groups:
            self.elbv2.delete_target_group(TargetGroupArn=arn)


@pytest.fixture
def alb(lab: helpers.Lab, network: dict[str, Any]) -> Iterator[Alb]:
    """An Alb builder whose resources are deleted after the test."""
    found = Alb(lab, network)
    yield found
    found.delete()


@pytest.fixture
def targets() -> Iterator[Callable[[str], TargetServer]]:
    """A factory of target servers, all closed after the test."""
    started: list[TargetServer] = []

    def start(name: str) -> TargetServer:
        started.append(TargetServer(name))
        return started[-1]

    yield start
    for server in started:
        with contextlib.suppress(Exception):
            server.close()


def test_no_registered_targets_answers_aws_503_page(alb: Alb, lab: helpers.Lab):
    group = alb.target_group()
    url = alb.create(group)
    endpoints = helpers.lab.local_endpoints(lab)["elbv2"]["load_balancers"]
    entry = endpoints[alb.balancer["LoadBalancerArn"]]
    assert entry["url"] == url and url.startswith("http://127.0.0.1:")
    assert entry["listeners"][alb.listeners[0]] == {"port": 80, "url": url}

    status, headers, body = fetch(url + "/anything")

    assert status == 503
    assert body == AWS_503 and len(body) == 162
    assert headers["Server"] == "awselb/2.0"
    assert headers["Content-Type"] == "text/html"
    assert headers["Content-Length"] == "162"


def test_forwarding_adds_aws_headers_and_streams_bodies(alb: Alb, targets):
    group = alb.target_group()
    url = alb.create(group)
    server = targets("a")
    alb.register(group, server)
    alb.wait_state(group, server, "healthy")

    seen = echo(url + "/hello?x=1", headers={"X-Forwarded-For": "203.0.113.7"})

    assert seen["target"] == "a" and seen["path"] == "/hello?x=1"
    headers = seen["headers"]
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == "80"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["x-amzn-trace-id"])
    assert headers["host"] == urllib.parse.urlsplit(url).netloc
    kept = echo(url + "/", headers={"X-Amzn-Trace-Id": "Root=1-5f000000-000000000000000000000abc"})
    assert "Root=1-5f000000-000000000000000000000abc" in kept["headers"]["x-amzn-trace-id"]

    posted = echo(url + "/form", method="POST", body=b"a=1&b=2")
    assert (posted["method"], posted["body"]) == ("POST", "a=1&b=2")
    chunked = echo(url + "/up", method="PUT", body=iter([b"part1-", b"part2"]))
    assert chunked["body"] == "part1-part2"
    status, headers, body = fetch(url + "/stream")
    assert (status, body) == (200, b"one,two,three")
    assert headers["X-Served-By"] == "a"  # the target's own headers pass through


@pytest.mark.long
def test_unhealthy_target_is_skipped_and_all_unhealthy_fails_open(alb: Alb, targets):
    group = alb.target_group()
    url = alb.create(group)
    good, bad = targets("good"), targets("bad")
    alb.register(group, good, bad)
    alb.wait_state(group, good, "healthy")
    alb.wait_state(group, bad, "healthy")
    assert {echo(url + "/")["target"] for _ in range(6)} == {"good", "bad"}

    bad.healthy = False
    state = alb.wait_state(group, bad, "unhealthy")

    assert state["Reason"] == "Target.ResponseCodeMismatch"
    assert state["Description"] == "Health checks failed with these codes: [500]"
    assert {echo(url + "/")["target"] for _ in range(10)} == {"good"}

    good.healthy = False
    alb.wait_state(group, good, "unhealthy")
    assert {echo(url + "/")["target"] for _ in range(10)} == {"good", "bad"}

    good.healthy = True
    alb.wait_state(group, good, "healthy")  # after HealthyThresholdCount passes
    assert {echo(url + "/")["target"] for _ in range(6)} == {"good"}


@pytest.mark.long
def test_target_that_is_down_gives_502(alb: Alb, targets):
    group = alb.target_group()
    url = alb.create(group)
    server = targets("a")
    alb.register(group, server)
    alb.wait_state(group, server, "healthy")
    assert echo(url + "/")["target"] == "a"  # leaves a pooled keep-alive connection behind

    server.close()
    status, headers, body = fetch(url + "/")

    assert status == 502
    assert body == AWS_502 and len(body) == 122
    assert headers["Server"] == "awselb/2.0"
    state = alb.wait_state(group, server, "unhealthy")
    assert state["Reason"] == "Target.FailedHealthChecks"


def test_rules_route_by_path_answer_fixed_responses_and_redirect(alb: Alb, targets):
    web, api = alb.target_group(), alb.target_group()
    url = alb.create(web)
    web_server, api_server = targets("web"), targets("api")
    alb.register(web, web_server)
    alb.register(api, api_server)
    listener = alb.listeners[0]
    alb.elbv2.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": api}],
    )
    alb.elbv2.create_rule(
        ListenerArn=listener,
        Priority=20,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/teapot"]}}],
        Actions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {
                    "StatusCode": "418",
                    "ContentType": "application/json",
                    "MessageBody": '{"short": "and stout"}',
                },
            }
        ],
    )
    alb.elbv2.create_rule(
        ListenerArn=listener,
        Priority=30,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/old/*"]}}],
        Actions=[
            {
                "Type": "redirect",
                "RedirectConfig": {"Path": "/new/#{path}", "StatusCode": "HTTP_301"},
            }
        ],
    )
    alb.wait_state(api, api_server, "healthy")  # in use now that a rule forwards to it
    alb.wait_state(web, web_server, "healthy")

    assert echo(url + "/api/orders")["target"] == "api"
    assert echo(url + "/API/orders")["target"] == "web"  # path patterns are case-sensitive
    assert echo(url + "/")["target"] == "web"
    status, headers, body = fetch(url + "/teapot")
    assert (status, json.loads(body)) == (418, {"short": "and stout"})
    assert headers["Content-Type"].startswith("application/json")
    status, headers, _ = fetch(url + "/old/page?q=1")
    assert status == 301
    assert headers["Location"] == f"{url}/new/old/page?q=1"


def test_deregistered_target_drains_then_disappears(alb: Alb, targets):
    group = alb.target_group(delay=1)
    url = alb.create(group)
    server = targets("a")
    alb.register(group, server)
    alb.wait_state(group, server, "healthy")

    alb.elbv2.deregister_targets(
        TargetGroupArn=group, Targets=[{"Id": "127.0.0.1", "Port": server.port}]
    )
    after = alb.health(group).get(server.port)

    # Right after the call the target drains (or, with a 1 s delay, may already be gone).
    if after is not None:
        assert after["State"] == "draining"
        assert after["Reason"] == "Target.DeregistrationInProgress"
    assert fetch(url + "/")[0] == 503  # a draining target gets no new requests
    wait_until(
        lambda: server.port not in alb.health(group),
        what="the target to be forgotten",
        timeout=45,
        interval=0.25,
    )
    [stranger] = alb.elbv2.describe_target_health(
        TargetGroupArn=group, Targets=[{"Id": "127.0.0.1", "Port": server.port}]
    )["TargetHealthDescriptions"]
    assert stranger["TargetHealth"]["State"] == "unused"
    assert stranger["TargetHealth"]["Reason"] == "Target.NotRegistered"


def test_unused_group_then_unreachable_address_times_out(alb: Alb):
    group = alb.target_group()
    alb.elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": "172.31.9.9", "Port": 8080}])
    [entry] = alb.elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    assert entry["TargetHealth"]["State"] == "unused"
    assert entry["TargetHealth"]["Reason"] == "Target.NotInUse"
    assert entry["HealthCheckPort"] == "8080"

    url = alb.create(group)
    state = wait_until(
        lambda: (h := alb.health(group)[8080])["State"] == "unhealthy" and h,
        what="the private address to be unhealthy",
        timeout=45,
        interval=0.25,
    )

    assert state["Reason"] == "Target.Timeout"
    assert state["Description"] == "Request timed out"
    status, _, body = fetch(url + "/")  # fail open to a target that cannot be reached
    assert status == 504 and b"504 Gateway Time-out" in body


def test_deleted_listener_stops_serving(alb: Alb):
    alb.target_group()
    url = alb.create(None)
    assert fetch(url + "/")[0] == 404  # the fixed-response default action

    alb.elbv2.delete_listener(ListenerArn=alb.listeners.pop())

    with pytest.raises(ConnectionError):
        fetch(url + "/")


def test_creates_are_idempotent_for_the_same_settings_and_refuse_others(alb: Alb):
    group = alb.target_group()
    alb.create(group)
    elbv2, balancer = alb.elbv2, alb.balancer
    described = elbv2.describe_target_groups(TargetGroupArns=[group])["TargetGroups"][0]
    same_group = {
        k: described[k] for k in ("TargetGroupName", "Protocol", "Port", "VpcId", "TargetType")
    }
    same_group["Name"] = same_group.pop("TargetGroupName")
    assert (
        elbv2.create_target_group(**same_group, **HEALTH)["TargetGroups"][0]["TargetGroupArn"]
        == group
    )
    again = elbv2.create_load_balancer(
        Name=balancer["LoadBalancerName"],
        Subnets=alb.network["subnets"],
        SecurityGroups=[alb.network["security_group"]],
    )["LoadBalancers"][0]
    assert again["LoadBalancerArn"] == balancer["LoadBalancerArn"]
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=forward,
    )["Listeners"][0]
    assert listener["ListenerArn"] == alb.listeners[0]
    names = [b["LoadBalancerName"] for b in elbv2.describe_load_balancers()["LoadBalancers"]]
    assert names.count(balancer["LoadBalancerName"]) == 1
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])
    assert len(listeners["Listeners"]) == 1

    def refused(call: Callable[[], Any]) -> tuple[str, str]:
        with pytest.raises(ClientError) as caught:
            call()
        return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]

    code, message = refused(lambda: elbv2.create_target_group(**{**same_group, "Port": 9090}))
    assert code == "DuplicateTargetGroupName" and "exists, but with different settings" in message
    code, _ = refused(
        lambda: elbv2.create_load_balancer(
            Name=balancer["LoadBalancerName"], Subnets=alb.network["subnets"][:1]
        )
    )
    assert code == "DuplicateLoadBalancerName"
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]
    code, message = refused(
        lambda: elbv2.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=fixed,
        )
    )
    assert code == "DuplicateListener" and balancer["LoadBalancerArn"] in message


def test_requests_publish_application_elb_metrics(alb: Alb, lab: helpers.Lab, targets):
    group = alb.target_group()
    url = alb.create(group)
    server = targets("a")
    alb.register(group, server)
    alb.wait_state(group, server, "healthy")
    for _ in range(5):
        echo(url + "/")
    cloudwatch = lab.client("cloudwatch")
    balancer = alb.balancer["LoadBalancerArn"].split(":loadbalancer/")[1]
    now = datetime.now(UTC)

    def total(name: str) -> float:
        found = cloudwatch.get_metric_statistics(
            Namespace="AWS/ApplicationELB",
            MetricName=name,
            Dimensions=[{"Name": "LoadBalancer", "Value": balancer}],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=5),
            Period=60,
            Statistics=["Sum"],
        )
        return sum(p["Sum"] for p in found["Datapoints"])

    wait_until(lambda: total("RequestCount") >= 5, what="RequestCount >= 5", timeout=45)
    wait_until(
        lambda: total("HTTPCode_Target_2XX_Count") >= 5,
        what="HTTPCode_Target_2XX_Count >= 5",
        timeout=45,
    )
