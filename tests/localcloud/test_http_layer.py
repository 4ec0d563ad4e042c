"""The shared HTTP layer on loopback: listener, whole-message serving, upstream pool, relaying."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from localcloud.http.exchange import Exchange
from localcloud.http.messages import HttpRequest, HttpResponse, WholeMessages
from localcloud.http.server import HttpListener, Serve
from localcloud.http.upstream import (
    UpstreamPool,
    UpstreamRequest,
    UpstreamTimeout,
    UpstreamUnavailable,
)


class Upstream(BaseHTTPRequestHandler):
    """An echo server: the method, target, Host and body as JSON; /slow waits, /close closes."""

    protocol_version = "HTTP/1.1"
    connections: set[int] = set()  # client ports seen, to tell new connections from reused

    def _serve(self) -> None:
        Upstream.connections.add(self.client_address[1])
        if self.path == "/slow":
            time.sleep(0.5)
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = json.dumps(
            {
                "method": self.command,
                "target": self.path,
                "host": self.headers.get("Host"),
                "body": body.decode(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = _serve

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    Upstream.connections = set()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


def listening(serve: Serve) -> HttpListener:
    listener = HttpListener("test", serve, idle_timeout=5.0)
    listener.start()
    return listener


def test_whole_messages_keep_alive_chunked_head_and_errors():
    seen: list[HttpRequest] = []

    def handle(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        if request.raw_path == "/boom":
            raise RuntimeError("a bug")
        return HttpResponse(200, [("X-Path", request.raw_path), ("Content-Length", "99")], b"ok")

    def error(status: int, message: str) -> HttpResponse:
        return HttpResponse(status, [("Content-Type", "text/plain")], message.encode())

    listener = listening(WholeMessages(handle, error, frozenset({"GET", "POST", "HEAD"})))
    connection = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
    try:
        connection.request("POST", "/a?x=1", body=iter([b"part1-", b"part2"]))
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"ok")
        assert response.getheader("Content-Length") == "2"  # the listener's own framing
        assert response.getheader("Date") and not response.will_close
        assert (seen[0].raw_path, seen[0].raw_query, seen[0].body) == ("/a", "x=1", b"part1-part2")
        assert seen[0].port == listener.port

        connection.request("HEAD", "/h")
        response = connection.getresponse()
        assert (response.getheader("Content-Length"), response.read()) == ("99", b"")

        connection.request("GET", "/boom")
        response = connection.getresponse()
        assert (response.status, response.read()) == (500, b"Internal Server Error")

        connection.request("DELETE", "/x")
        response = connection.getresponse()
        assert (response.status, response.getheader("Allow")) == (405, "GET, HEAD, POST")
    finally:
        connection.close()
        listener.stop()


def test_stop_closes_kept_alive_client_connections():
    listener = listening(WholeMessages(lambda r: HttpResponse(204), lambda s, m: HttpResponse(s)))
    client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.recv(4096).startswith(b"HTTP/1.1 204")
    listener.stop()
    assert client.recv(4096) == b""  # closed by the listener, not by an idle timeout
    client.close()


def proxy_to(pool: UpstreamPool, address: tuple[str, int]) -> Serve:
    """A minimal streaming proxy on the shared layer, as the ALB uses it."""

    def serve(exchange: Exchange) -> None:
        body, stream = exchange.read_body(buffered=4)
        headers = [(k, v) for k, v in exchange.headers if k.lower() != "transfer-encoding"]
        if exchange.chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        request = UpstreamRequest(
            exchange.method, exchange.target, headers, body, stream, exchange.chunked
        )
        reply = pool.send(("http", *address), request, timeout=5)
        pool.finish(reply, complete=exchange.relay(reply.response))

    return serve


def test_relay_streams_bodies_and_reuses_upstream_connections(upstream):
    pool = UpstreamPool()
    listener = listening(proxy_to(pool, upstream))
    connection = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
    try:
        answers = []
        for body in (b"abc", b"longer than four bytes", iter([b"x", b"yz"])):
            connection.request("PUT", "/p?q=1", body=body)
            answers.append(json.loads(connection.getresponse().read()))
        assert [a["body"] for a in answers] == ["abc", "longer than four bytes", "xyz"]
        assert answers[0]["target"] == "/p?q=1"
        assert answers[0]["host"] == f"127.0.0.1:{listener.port}"  # the client's Host
        assert len(Upstream.connections) == 1  # one pooled connection served all three
    finally:
        connection.close()
        listener.stop()
        pool.clear()


def test_a_pooled_connection_the_upstream_closed_is_replaced(upstream):
    pool = UpstreamPool()
    origin = ("http", *upstream)
    _, body = pool.fetch(origin, UpstreamRequest("GET", "/first", []), timeout=5)
    assert json.loads(body)["host"] == f"{upstream[0]}:{upstream[1]}"  # the upstream's own
    (idle,) = pool._idle[origin]
    idle.sock.shutdown(socket.SHUT_WR)  # the upstream then closes its end
    request = UpstreamRequest("POST", "/again", [("Content-Length", "2")], b"hi")
    response, body = pool.fetch(origin, request, timeout=5)
    assert (response.status, json.loads(body)["body"]) == (200, "hi")
    pool.fetch(origin, UpstreamRequest("GET", "/close", []), timeout=5)
    assert pool._idle[origin] == []  # Connection: close is not pooled
    pool.clear()


def test_upstream_failures_are_timeouts_or_unavailable(upstream):
    pool = UpstreamPool()
    with pytest.raises(UpstreamTimeout):
        pool.fetch(("http", *upstream), UpstreamRequest("GET", "/slow", []), timeout=0.1)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(UpstreamUnavailable):
        pool.fetch(("http", "127.0.0.1", port), UpstreamRequest("GET", "/", []), timeout=1)
