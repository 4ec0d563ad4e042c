"""The threaded HTTP/1.1 server behind every local listener, on 127.0.0.1 at a port the OS picks.

A thread per client connection, with keep-alive and TCP_NODELAY (an answer written at once
never waits on Nagle's algorithm). Each request, whatever its method, is read within the
listener's `Limits` (`framing.py`) and handed to the service's `serve` function as an
`Exchange`. A request that cannot be framed safely (also one whose body turns out malformed
before the answer began) gets a status line with the service's own error body, made by its
`error` function, and the connection closes. Stopping a listener also closes the
connections that clients keep open: a deleted listener serves no more.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..config import HOST
from .exchange import Exchange, http_date, reason
from .framing import Limits, Refusal, read_head
from .messages import HttpResponse

Serve = Callable[[Exchange], None]
ErrorAnswer = Callable[[int, str], HttpResponse]  # (status, message) -> the service's answer

_LINGER_SECONDS = 2.0  # after a refusal, how long what the client still sends is read
_LINGER_BYTES = 1024 * 1024
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


def plain_error(status: int, message: str) -> HttpResponse:
    """A plain-text error answer, for listeners without an error format of their own."""
    return HttpResponse(status, [("Content-Type", "text/plain; charset=utf-8")], message.encode())


class HttpListener:
    """A local HTTP server for one listener or API: start, stop, port and URL."""

    def __init__(
        self,
        name: str,
        serve: Serve,
        idle_timeout: float,
        limits: Limits | None = None,
        error: ErrorAnswer = plain_error,
    ) -> None:
        self.name = name
        self.serve = serve
        self.idle_timeout = idle_timeout  # an idle client connection is closed after this
        self.limits = limits or Limits()
        self.error = error  # the answer to a request the listener refuses
        self._server: _Server | None = None

    @property
    def port(self) -> int:
        """The port on 127.0.0.1 (0 when not serving)."""
        return self._server.server_port if self._server else 0

    @property
    def url(self) -> str:
        """The local base URL."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Bind a free port and serve in a daemon thread."""
        self._server = _Server(self.serve, self.idle_timeout, self.limits, self.error)
        thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.name}-{self.port}",
            daemon=True,
        )
        thread.start()

    def stop(self) -> None:
        """Stop accepting, and close the connections that clients keep open."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that remembers its client connections, to close them on stop."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, serve: Serve, idle_timeout: float, limits: Limits, error: ErrorAnswer
    ) -> None:
        self.serve, self.idle_timeout = serve, idle_timeout
        self.limits, self.error = limits, error
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((HOST, 0), _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS look-up of the host name."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection so that stop() can close it."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget a connection that its handler finished with."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection (kept-alive threads end at once)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads the requests of one client connection and hands each to the service."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        """Apply the listener's idle timeout to the connection."""
        self.timeout = self.server.idle_timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the daemon logs no access lines."""

    def handle_one_request(self) -> None:
        """Read one request's head within the limits, then serve it (any method)."""
        exchange: Exchange | None = None
        try:
            head = read_head(self.rfile, self.server.limits)
            if head is None:
                self.close_connection = True
                return
            self.close_connection = head.close
            if head.expect_continue:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            exchange = Exchange(self, head, self.server.server_port, self.server.limits)
            self.server.serve(exchange)
        except Refusal as refusal:
            self.close_connection = True
            if exchange is None or not exchange.started:
                self._refuse(refusal)
        except (TimeoutError, ConnectionError, ValueError):
            # An idle or vanished client, or a body whose framing cannot be read.
            self.close_connection = True

    def _refuse(self, refusal: Refusal) -> None:
        """Answer with the service's error body and close, without losing the answer."""
        response = self.server.error(refusal.status, refusal.message)
        headers = [(k, v) for k, v in response.headers if k.lower() not in _FRAMING]
        if not any(k.lower() == "date" for k, _ in headers):
            headers.append(("Date", http_date()))
        lines = [f"HTTP/1.1 {refusal.status} {reason(refusal.status)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines += [f"Content-Length: {len(response.body)}", "Connection: close"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        with contextlib.suppress(OSError):
            self.wfile.write(head + response.body)
            self._linger()

    def _linger(self) -> None:
        """Half-close, then drop what the client still sends for a moment.

        Closing a socket with unread data resets the connection, and the client could lose
        the answer that is on its way.
        """
        self.connection.shutdown(socket.SHUT_WR)
        self.connection.settimeout(_LINGER_SECONDS / 4)
        deadline, drained = time.monotonic() + _LINGER_SECONDS, 0
        while time.monotonic() < deadline and drained < _LINGER_BYTES:
            data = self.connection.recv(64 * 1024)
            if not data:
                return
            drained += len(data)
