"""The threaded HTTP/1.1 server behind every local listener, on 127.0.0.1 at a port the OS picks.

A thread per client connection, with keep-alive and TCP_NODELAY (an answer written at once
never waits on Nagle's algorithm). Each request, whatever its method, is parsed and handed to
the service's `serve` function as an `Exchange`. Stopping a listener also closes the
connections that clients keep open: a deleted listener serves no more.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..config import HOST
from .exchange import Exchange

Serve = Callable[[Exchange], None]


class HttpListener:
    """A local HTTP server for one listener or API: start, stop, port and URL."""

    def __init__(self, name: str, serve: Serve, idle_timeout: float) -> None:
        self.name = name
        self.serve = serve
        self.idle_timeout = idle_timeout  # an idle client connection is closed after this
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
        self._server = _Server(self.serve, self.idle_timeout)
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

    def __init__(self, serve: Serve, idle_timeout: float) -> None:
        self.serve, self.idle_timeout = serve, idle_timeout
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
        """Read one request line and headers, then serve the request (any method)."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.server.serve(Exchange(self, self.server.server_port))
        except (TimeoutError, ConnectionError, ValueError):
            # An idle or vanished client, or a body whose framing cannot be read.
            self.close_connection = True
