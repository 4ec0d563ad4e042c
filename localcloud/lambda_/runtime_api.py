"""The Lambda Runtime API (2018-06-01) that one worker's `awslambdaric` polls.

The API is AWS's (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). Each
worker gets its own server on a free loopback port, because the runtime's base URL
(`AWS_LAMBDA_RUNTIME_API=host:port`) cannot carry a worker id. The server hands out one
invocation at a time on `GET /next` and records what the runtime posts back: a response,
an invocation error, or an init error. Two details matter for speed and correctness:
Nagle's algorithm must be off (else every warm invoke waits for a delayed ACK), and `/next`
must answer with `Content-Type: application/json`.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..config import HOST

MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # what the runtime may post (AWS: 6291556 bytes)
_MAX_HEADER_LINE = 64 * 1024
_MAX_HEADERS = 100
_INVOCATION = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")


@dataclass
class Invocation:
    """One invoke as the runtime sees it, and what came back."""

    request_id: str
    payload: bytes
    function_arn: str
    timeout_s: float
    client_context: str | None = None
    trace_id: str = ""
    # Filled in as the invocation progresses:
    dispatched_at: float | None = None  # when the runtime received it (perf_counter)
    finished_at: float | None = None
    outcome: str = "pending"  # ok | function_error | init_error | too_large
    body: bytes = b""
    content_type: str = "application/json"
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, outcome: str, body: bytes, content_type: str = "application/json") -> None:
        """Record the result and wake the invoking thread."""
        if self.done.is_set():
            return
        self.finished_at = time.perf_counter()
        self.outcome, self.body, self.content_type = outcome, body, content_type
        self.done.set()


class RuntimeApi:
    """A Runtime API server for one worker: a queue of invocations and the current one.

    A runtime's `GET /next` that finds no work is parked: its handler thread goes back to
    reading the connection, and `submit` answers the parked poll from the invoking thread.
    Handing the invocation to the handler thread instead cost a thread wake-up per invoke.
    """

    def __init__(self) -> None:
        self.pending: collections.deque[Invocation | None] = collections.deque()
        self.current: Invocation | None = None
        self.init_error: bytes | None = None
        self.first_poll_at: float | None = None  # end of the init phase
        self.on_first_poll: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._parked: Callable[[bytes], Any] | None = None  # writes the parked poll's answer
        self._server = ThreadingHTTPServer((HOST, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """`host:port`, the value of AWS_LAMBDA_RUNTIME_API."""
        return f"{HOST}:{self._server.server_port}"

    def submit(self, invocation: Invocation) -> None:
        """Answer the runtime's parked poll with the invocation, or queue it for the next."""
        self._hand_over(invocation)

    def close(self) -> None:
        """Stop serving; a runtime still polling gets no more work. Does not wait."""
        self._hand_over(None)
        # shutdown() blocks until the serve loop's next poll (up to 0.5 s): not on our caller.
        threading.Thread(target=self._shut_down, daemon=True).start()

    def _shut_down(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _hand_over(self, invocation: Invocation | None) -> None:
        """To the parked poll if there is one, else queued (first in line if a parked poll's
        connection turned out to be gone: the runtime's next poll gets it)."""
        gone = False
        while True:
            with self._lock:
                write, self._parked = self._parked, None
                if write is None:
                    if gone:
                        self.pending.appendleft(invocation)
                    else:
                        self.pending.append(invocation)
                    return
                self._dispatched(invocation)
            try:
                write(_next_response(invocation))
                return
            except OSError:  # the runtime closed that connection; a newer poll may be parked
                gone = True
                with self._lock:
                    if invocation is not None and self.current is invocation:
                        self.current, invocation.dispatched_at = None, None

    def _dispatched(self, invocation: Invocation | None) -> None:
        """Mark the invocation as the runtime's current one (under self._lock)."""
        if invocation is not None:
            invocation.dispatched_at = time.perf_counter()
            self.current = invocation

    # Called from the HTTP handler threads:

    def poll(self, write: Callable[[bytes], Any]) -> bytes | None:
        """The runtime's long poll: the answer now, or None when parked until `submit`."""
        if self.first_poll_at is None:
            self.first_poll_at = time.perf_counter()
            if self.on_first_poll is not None:
                self.on_first_poll()
        with self._lock:
            if not self.pending:
                self._parked = write
                return None
            invocation = self.pending.popleft()
            self._dispatched(invocation)
        return _next_response(invocation)

    def record_init_error(self, body: bytes) -> None:
        """The runtime could not load the handler; the pending invoke fails with this body."""
        self.init_error = body
        if self.current is not None:
            self.current.finish("init_error", body)


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one worker's RuntimeApi."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the runtime reuses its connection
        disable_nagle_algorithm = True  # otherwise every warm invoke waits ~40-90 ms

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request access log."""

        def parse_request(self) -> bool:
            """The request line and headers, without http.server's email-package parser.

            That parser was the larger part of handling the two small requests of each invoke.
            """
            self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
            words = self.requestline.split()
            if len(words) != 3 or not words[2].startswith("HTTP/1."):
                self.close_connection = True
                return False
            self.command, self.path, self.request_version = words
            headers = _Headers()
            while True:
                line = self.rfile.readline(_MAX_HEADER_LINE + 1)
                if line in (b"\r\n", b"\n", b""):
                    break
                if len(line) > _MAX_HEADER_LINE or len(headers) >= _MAX_HEADERS:
                    self.close_connection = True
                    return False
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            self.headers = headers  # type: ignore[assignment]
            self.close_connection = headers.get("Connection", "").lower() == "close"
            return True

        def do_GET(self) -> None:
            if self.path != "/2018-06-01/runtime/invocation/next":
                return self._json(404, {"errorMessage": "not found", "errorType": "NotFound"})
            answer = api.poll(self.wfile.write)
            if answer is not None:
                self.wfile.write(answer)
            else:  # parked: `submit` writes the answer; the connection must stay open for it
                self.close_connection = False

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/2018-06-01/runtime/init/error":
                api.record_init_error(body)
                self.wfile.write(_ACCEPTED)
                return
            match = _INVOCATION.match(self.path)
            if match is None:
                return self._json(404, {"errorMessage": "not found", "errorType": "NotFound"})
            request_id, kind = match.groups()
            current = api.current
            if current is None or current.request_id != request_id:
                return self._json(
                    400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
                )
            if kind == "error":
                current.finish("function_error", body)
            elif length > MAX_RESPONSE_BYTES:
                current.finish("too_large", _too_large_error())
                return self._json(413, json.loads(_too_large_error()))
            else:
                content_type = self.headers.get("Content-Type", "application/json")
                current.finish("ok", body, content_type)
            self.wfile.write(_ACCEPTED)

        def _json(self, status: int, document: dict[str, Any]) -> None:
            self._send(status, {"Content-Type": "application/json"}, json.dumps(document).encode())

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            # One write for headers and body: with Nagle off this is one packet.
            self.wfile.write(_response(status, headers, body))

    return Handler


def _next_response(invocation: Invocation | None) -> bytes:
    """The answer to `GET /next`: the invocation, or 410 when the worker is shutting down."""
    if invocation is None:
        body = json.dumps({"errorMessage": "shutting down", "errorType": "Gone"}).encode()
        return _response(410, {"Content-Type": "application/json"}, body)
    deadline_ms = int((time.time() + invocation.timeout_s) * 1000)
    headers = {
        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
        "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
        "Lambda-Runtime-Trace-Id": invocation.trace_id,
        "Content-Type": "application/json",
    }
    if invocation.client_context:
        headers["Lambda-Runtime-Client-Context"] = invocation.client_context
    return _response(200, headers, invocation.payload)


def _response(status: int, headers: dict[str, str], body: bytes) -> bytes:
    """One whole response: status line, headers, Content-Length and body."""
    lines = [f"HTTP/1.1 {status} {'OK' if status < 300 else 'Error'}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# The runtime's every response and init error is answered with this: built once.
_ACCEPTED = _response(202, {"Content-Type": "application/json"}, b'{"status": "OK"}')


class _Headers(dict[str, str]):
    """Header fields by lower-case name; `get` takes any case."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


def _too_large_error() -> bytes:
    """The error body AWS returns when a function's response is over the limit."""
    return json.dumps(
        {
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            "(6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    ).encode()
