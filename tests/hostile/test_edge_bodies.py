"""Request bodies at the edge: bounded by AWS's size limits, read only to EOF, with a deadline.

The attack that found it: a chunked request declaring a huge chunk, then the client closing
its side. The edge read "until the declared length", counting empty reads at EOF as data, and
grew by about 1 GiB a second. Each case here goes over a raw socket to the session's daemon
and checks the status and AWS error code, that the daemon's memory did not grow, and that it
still serves boto3 afterwards.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from local_clients import local_client
from werkzeug.serving import make_server

from localcloud import daemon, edge
from localcloud.edge import bodies
from localcloud.registry import Registry

AUTH = (
    "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
TARGET = "X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Type: application/x-amz-json-1.0"
MEMORY_SLACK = 100 * 1024 * 1024  # far below what one attack used to take (1 GiB a second)


def raw_exchange(
    port: int, data: bytes, timeout: float = 60.0
) -> tuple[int, dict[str, str], bytes]:
    """Send bytes, close our sending side, and return the status, headers and body answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # the client goes away: no more body will come
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def request(port: int, service: str, headers: str, body: bytes = b"", path: str = "/") -> bytes:
    """A raw HTTP/1.1 POST signed (in scope only) for `service`."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: {AUTH.format(service=service)}\r\n{headers}\r\n\r\n"
    )
    return head.encode() + body


def error_code(headers: dict[str, str], body: bytes) -> str:
    """The AWS error code of a JSON or XML error answer."""
    if "x-amzn-errortype" in headers:
        return headers["x-amzn-errortype"]
    if body.startswith(b"<"):
        return re.search(rb"<Code>([^<]+)</Code>", body).group(1).decode()
    return json.loads(body)["__type"]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


def assert_healthy(cloud: daemon.DaemonInfo) -> None:
    """The daemon answers its health call and a boto3 call."""
    assert daemon.call(cloud, "health")["status"] == "ok"
    client = local_client(cloud, "dynamodb")
    assert "TableNames" in client.list_tables()


ATTACKS: dict[str, tuple[str, bytes, int, str]] = {
    # name: (headers, body, status, code)
    "huge chunk, client gone": (
        f"{TARGET}\r\nTransfer-Encoding: chunked",
        b"7fffffffffffffff\r\nabc",
        413,
        "RequestEntityTooLargeException",
    ),
    "chunk within the limit, client gone": (
        f"{TARGET}\r\nTransfer-Encoding: chunked",
        b"100000\r\nabc",
        400,
        "IncompleteBodyException",
    ),
    "chunks adding up past the limit": (  # 24 MiB, then another 24 MiB declared
        f"{TARGET}\r\nTransfer-Encoding: chunked",
        b"1800000\r\n" + b"x" * 0x1800000 + b"\r\n1800000\r\nabc",
        413,
        "RequestEntityTooLargeException",
    ),
    "huge Content-Length, client gone": (
        f"{TARGET}\r\nContent-Length: 99999999999",
        b"{}",
        413,
        "RequestEntityTooLargeException",
    ),
    "body shorter than its Content-Length": (
        f"{TARGET}\r\nContent-Length: 1000",
        b"{}",
        400,
        "IncompleteBodyException",
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_oversized_or_truncated_bodies_are_refused_without_growing(cloud, name):
    headers, body, status, code = ATTACKS[name]
    before = rss_bytes(cloud.pid)
    answered, answer_headers, answer = raw_exchange(
        cloud.port, request(cloud.port, "dynamodb", headers, body)
    )
    assert (answered, error_code(answer_headers, answer)) == (status, code)
    assert rss_bytes(cloud.pid) - before < MEMORY_SLACK
    assert_healthy(cloud)


def test_lambda_invoke_over_six_mb_is_refused_like_aws(cloud):
    client = boto3.client(
        "lambda",
        endpoint_url=cloud.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="any", Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert "6291456 bytes for the InvokeFunction operation" in error["Error"]["Message"]
    assert_healthy(cloud)


class _NoMoto:
    """Stands in for moto: answers an empty JSON object."""

    def serve(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]


@pytest.fixture
def fast_edge(monkeypatch) -> Iterator[int]:
    """An edge on its own port whose body reads give up after half a second of silence."""
    monkeypatch.setattr(bodies, "BODY_IDLE_S", 0.5)
    app = edge.Edge(Registry([]), _NoMoto(), lambda name, body: (200, {}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def test_a_body_that_stops_arriving_times_out(fast_edge):
    """A client that declares a body and then sends nothing, keeping its socket open."""
    with socket.create_connection(("127.0.0.1", fast_edge), timeout=30) as sock:
        sock.sendall(request(fast_edge, "dynamodb", f"{TARGET}\r\nContent-Length: 100", b"{"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["__type"] == "RequestTimeoutException"
