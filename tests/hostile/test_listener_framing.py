"""Malformed HTTP on every local listener type: an ALB listener and an HTTP API.

Each request goes over a raw socket, followed on the same connection by a pipelined
`GET /smuggled`. Every listener must answer with a real status line and its service's own
error body (the ALB's HTML page, API Gateway's JSON `{"message": ...}`), never a 502 for a
client's mistake; the smuggled request must never reach the target behind the listener;
and the listener must serve a good request afterwards.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from live_fixtures import DefaultNetwork
from polling import wait_until

import helpers

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
_BIG_HEADERS = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 10_000) for i in range(8))  # 80 KB
# The start of a TLS ClientHello: a handshake record, and no line end to wait for.
_TLS_HELLO = bytes.fromhex("16030100f4010000f00303") + bytes(range(32))

# name -> (request bytes, status from the ALB, status from the HTTP API); None: not sent there.
CASES: dict[str, tuple[bytes, int | None, int | None]] = {
    "garbage": (b"\x00\x01\x02 garbage\r\n\r\n", 400, 400),
    "tls-bytes": (_TLS_HELLO, 400, 400),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, 505),
    "http2-version": (b"GET /ok HTTP/2.0\r\nHost: x\r\n\r\n", 505, 505),
    "no-version": (b"GET /ok\r\n\r\n", 400, 400),
    "nul-in-path": (b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400, 400),
    "non-ascii-path": (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, 400),
    "two-content-lengths": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        400,
        400,
    ),
    "bad-content-length": (b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, 400),
    "80kb-of-headers": (b"GET /ok HTTP/1.1\r\nHost: x\r\n" + _BIG_HEADERS + b"\r\n", 400, 431),
    "nul-in-header": (b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, 400),
    "folded-header": (b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, 400),
    "no-host": (b"GET /ok HTTP/1.1\r\n\r\n", 400, 400),
    "absurd-chunk-size": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"FFFFFFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n",
        400,
        400,
    ),
    "chunk-over-payload-quota": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\nabc",
        None,  # the ALB streams bodies of any size to the target
        413,
    ),
    "chunk-without-crlf": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabcdef\r\n0\r\n\r\n",
        400,
        400,
    ),
    "disguised-transfer-encoding": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n"
        b"\r\n0\r\n\r\n",
        400,
        400,
    ),
    "unsupported-transfer-coding": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        501,
    ),
    # AWS's default (defensive) desync mitigation forwards this, then closes both sides.
    "content-length-and-chunked": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n0\r\n\r\n",
        200,
        400,
    ),
    "unknown-method": (b"FROB /ok HTTP/1.1\r\nHost: x\r\n\r\n", None, 405),
    "trace": (b"TRACE /ok HTTP/1.1\r\nHost: x\r\n\r\n", 405, 405),  # ALB: not supported
}


class Recorder:
    """A target on 127.0.0.1 that notes every request it gets and answers 200 with JSON."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):  # any method at all
                    return self._answer
                raise AttributeError(name)

            def _answer(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                if "chunked" in headers.get("transfer-encoding", ""):
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        self.rfile.read(size + 2)
                    self.rfile.readline()
                else:
                    self.rfile.read(int(headers.get("content-length") or 0))
                recorder.seen.append({"method": self.command, "path": self.path, **headers})
                body = json.dumps({"path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        """The paths of the requests seen so far."""
        return [seen["path"] for seen in self.seen]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    """The target behind both listeners."""
    found = Recorder()
    yield found
    found.close()


@pytest.fixture(scope="module")
def alb_port(
    module_lab: helpers.Lab, default_network: DefaultNetwork, recorder: Recorder
) -> Iterator[int]:
    """The local port of an ALB listener that forwards to the recorder, once it is healthy."""
    elbv2 = module_lab.client("elbv2")
    suffix = uuid.uuid4().hex[:8]
    group = elbv2.create_target_group(
        Name=f"pytest-framing-{suffix}",
        Protocol="HTTP",
        Port=8080,
        VpcId=default_network.vpc_id,
        TargetType="ip",
        HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(
        TargetGroupArn=group, Targets=[{"Id": "127.0.0.1", "Port": recorder.port}]
    )
    balancer = elbv2.create_load_balancer(
        Name=f"pytest-framing-{suffix}", Subnets=default_network.subnet_ids[:2], Type="application"
    )["LoadBalancers"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )["Listeners"][0]["ListenerArn"]
    wait_until(
        lambda: (
            elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"][0][
                "TargetHealth"
            ]["State"]
            == "healthy"
        ),
        what="the recorder healthy",
        timeout=45,
    )
    yield urllib.parse.urlsplit(module_lab.url_for(balancer)).port
    elbv2.delete_listener(ListenerArn=listener)
    elbv2.delete_load_balancer(LoadBalancerArn=balancer["LoadBalancerArn"])
    elbv2.delete_target_group(TargetGroupArn=group)


@pytest.fixture(scope="module")
def api_port(module_lab: helpers.Lab, recorder: Recorder) -> Iterator[int]:
    """The local port of an HTTP API whose `ANY /{proxy+}` route proxies to the recorder."""
    apigw = module_lab.client("apigatewayv2")
    api_id = apigw.create_api(Name=f"pytest-framing-{uuid.uuid4().hex[:6]}", ProtocolType="HTTP")[
        "ApiId"
    ]
    integration = apigw.create_integration(
        ApiId=api_id,
        IntegrationType="HTTP_PROXY",
        IntegrationUri=f"http://127.0.0.1:{recorder.port}/{{proxy}}",
        IntegrationMethod="ANY",
        PayloadFormatVersion="1.0",
    )["IntegrationId"]
    apigw.create_route(ApiId=api_id, RouteKey="ANY /{proxy+}", Target=f"integrations/{integration}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    yield urllib.parse.urlsplit(module_lab.url_for(apigw.get_api(ApiId=api_id))).port
    apigw.delete_api(ApiId=api_id)


def send_raw(port: int, data: bytes) -> bytes:
    """Send bytes on a fresh connection and read until the listener closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
        client.sendall(data)
        received = []
        while piece := client.recv(65536):
            received.append(piece)
    return b"".join(received)


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers lower-cased, body) of the one response in `answer`."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    match = re.fullmatch(r"HTTP/1\.1 (\d{3}) [^\r\n]*", status_line)
    assert match, f"no status line in {answer[:200]!r}"
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    assert len(body) == int(headers["content-length"]), "one response, framed by its length"
    return int(match.group(1)), headers, body


def good_request(port: int) -> int:
    """The status of a well-formed GET /ok on a fresh connection."""
    status, _, _ = parse(
        send_raw(port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    )
    return status


@pytest.mark.parametrize("case", [name for name, (_, alb, _) in CASES.items() if alb], ids=str)
def test_alb_listener_refuses_malformed_requests(case: str, alb_port: int, recorder: Recorder):
    data, expected, _ = CASES[case]

    status, headers, body = parse(send_raw(alb_port, data + SMUGGLED))

    assert status == expected
    assert headers["connection"] == "close"
    if status >= 400:  # the load balancer's own answer, in its HTML error page format
        assert headers["server"] == "awselb/2.0" and headers["content-type"] == "text/html"
        assert re.fullmatch(
            rb"<html>\r\n<head><title>%d [^<]+</title></head>\r\n.*" % status, body, re.S
        )
    else:  # forwarded as chunked alone, then both connections closed
        forwarded = next(seen for seen in reversed(recorder.seen) if seen["method"] == "POST")
        assert "content-length" not in forwarded and forwarded["transfer-encoding"] == "chunked"
    assert "/smuggled" not in recorder.paths()
    assert good_request(alb_port) == 200


@pytest.mark.parametrize("case", [name for name, (_, _, api) in CASES.items() if api], ids=str)
def test_http_api_refuses_malformed_requests(case: str, api_port: int, recorder: Recorder):
    data, _, expected = CASES[case]

    status, headers, body = parse(send_raw(api_port, data + SMUGGLED))

    assert status == expected
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert set(json.loads(body)) == {"message"}  # API Gateway's own error shape
    assert "/smuggled" not in recorder.paths()
    assert good_request(api_port) == 200
