"""The edge's HTTP/1.1 server (localcloud/http/wsgi.py): keep-alive, bodies, headers, framing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.http.wsgi import WsgiServer

Seen = list[dict[str, Any]]


@pytest.fixture
def served() -> Iterator[tuple[int, Seen]]:
    """A server whose app echoes the body it read (all of it unless X-Read says how much)."""
    seen: Seen = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        wanted = int(environ.get("HTTP_X_READ", "-1"))
        body = environ["wsgi.input"].read(wanted)
        seen.append({**environ, "body": body})
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"got " + body]

    server = WsgiServer("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, seen
    server.shutdown()


def exchange(sock: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """Send one request and read one response (framed by its Content-Length)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def post(port: int, body: bytes, extra: str = "") -> bytes:
    head = f"POST /a%2Fb?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    return (head + extra + "\r\n").encode() + body


def test_requests_on_one_connection_each_get_their_body_and_the_raw_target(served):
    port, seen = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for n in range(3):
            head, body = exchange(sock, post(port, f"request {n}".encode()))
            assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" not in head
            assert body == f"got request {n}".encode()
    assert [e["body"] for e in seen] == [b"request 0", b"request 1", b"request 2"]
    assert {(e["PATH_INFO"], e["RAW_URI"], e["QUERY_STRING"]) for e in seen} == {
        ("/a/b", "/a%2Fb?x=1", "x=1")
    }


def test_a_body_left_unread_closes_the_connection_after_the_answer(served):
    port, seen = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head, body = exchange(sock, post(port, b"0123456789", "X-Read: 4\r\n"))
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
        assert body == b"got 0123"
        assert sock.recv(65536) == b""  # closed: the rest was never taken for a request


def test_chunked_bodies_reach_the_app_raw_and_close_the_connection(served):
    port, seen = served
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n"
        "X-Read: 10\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head, body = exchange(sock, request)
    assert body == b"got 3\r\nabc\r\n0\r" and b"Connection: close" in head


def test_underscored_headers_stay_out_of_the_environ_but_are_listed(served):
    port, seen = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        exchange(sock, post(port, b"", "X-Amz-Meta-My_Key: v\r\nX-Twice: 1\r\nX-Twice: 2\r\n"))
    environ = seen[0]
    assert "HTTP_X_AMZ_META_MY_KEY" not in environ
    assert ("X-Amz-Meta-My_Key", "v") in environ["localcloud.headers"]
    assert environ["HTTP_X_TWICE"] == "1,2"


@pytest.mark.parametrize(
    ("request_line", "status"),
    [(b"NONSENSE\r\n", b"400"), (b"GET / HTTP/2.0\r\n", b"505")],
)
def test_a_malformed_request_line_is_refused_and_closed(served, request_line, status):
    port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_line + b"Host: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split()[1] == status
