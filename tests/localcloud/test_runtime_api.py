"""The Runtime API hands an invocation to a parked poll, or to the next poll when it is gone."""

from __future__ import annotations

import json
import socket

from polling import wait_until

from localcloud.lambda_.runtime_api import Invocation, RuntimeApi

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n\r\n"


def _connect(api: RuntimeApi) -> socket.socket:
    host, port = api.address.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers and body of one response."""
    stream = sock.makefile("rb")
    status = stream.readline().decode().strip()
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, stream.read(int(headers["content-length"]))


def _invocation(request_id: str) -> Invocation:
    return Invocation(request_id, b'{"n": 1}', "arn:aws:lambda:us-east-1:0:function:f", 3.0)


def _parked(api: RuntimeApi, sock: socket.socket) -> None:
    """Send a poll and wait until the server has parked it."""
    sock.sendall(NEXT)
    wait_until(
        lambda: api._parked is not None,  # noqa: SLF001 - the state this test is about
        what="the poll to be parked",
        timeout=10,
        interval=0.01,
    )


def test_parked_poll_is_answered_by_submit_and_a_dead_one_passes_it_on():
    api = RuntimeApi()
    try:
        # Work queued before the runtime polls is answered at once.
        api.submit(_invocation("queued"))
        runtime = _connect(api)
        runtime.sendall(NEXT)
        status, headers, body = _response(runtime)
        assert status == "HTTP/1.1 200 OK" and headers["lambda-runtime-aws-request-id"] == "queued"

        # A poll with no work waits; submit answers it on the same connection.
        _parked(api, runtime)
        first = _invocation("first")
        api.submit(first)
        status, headers, body = _response(runtime)
        assert headers["lambda-runtime-aws-request-id"] == "first" and json.loads(body) == {"n": 1}
        assert api.current is first and first.dispatched_at is not None

        # The runtime answers; then polls and goes away: the next invocation waits for a
        # new connection's poll instead of being lost on the dead one.
        runtime.sendall(
            b"POST /2018-06-01/runtime/invocation/first/response HTTP/1.1\r\n"
            b"Content-Length: 2\r\n\r\nok"
        )
        assert _response(runtime)[0].startswith("HTTP/1.1 202")
        assert first.done.is_set() and first.body == b"ok"
        _parked(api, runtime)
        runtime.close()
        wait_until(
            lambda: api._parked.__self__._sock.fileno() == -1,  # noqa: SLF001
            what="the server to close the runtime's connection",
            timeout=10,
            interval=0.01,
        )
        api.submit(_invocation("second"))
        again = _connect(api)
        again.sendall(NEXT)
        assert _response(again)[1]["lambda-runtime-aws-request-id"] == "second"

        # Closing answers a parked poll with 410.
        _parked(api, again)
        api.close()
        assert _response(again)[0].startswith("HTTP/1.1 410")
    finally:
        api.close()
