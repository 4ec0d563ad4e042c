"""One listener's local HTTP server and the pool of connections to targets.

Each HTTP or HTTPS listener is a threaded HTTP/1.1 server on 127.0.0.1 with keep-alive, at
a port the OS chooses; `proxy.ProxyHandler` serves its requests. Keep-alive connections to
targets are pooled per address and shared by all listener threads, so a forwarded request
normally costs no new TCP connection.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from ..config import HOST
from . import rules
from .proxy import ProxyHandler

if TYPE_CHECKING:
    from .provider import ElbV2Provider

Address = tuple[str, int]


class UpstreamPool:
    """Idle keep-alive connections to targets, shared by all listener threads."""

    def __init__(self, per_address: int = 32) -> None:
        self._idle: dict[Address, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._per_address = per_address

    def get(self, address: Address, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection that the target has not closed, or a new one; (conn, reused)."""
        while True:
            with self._lock:
                idle = self._idle.get(address)
                connection = idle.pop() if idle else None
            if connection is None:
                return http.client.HTTPConnection(address[0], address[1], timeout=timeout), False
            sock = connection.sock
            # An idle connection is readable only when the target closed it (or misbehaved).
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                sock.settimeout(timeout)
                return connection, True
            connection.close()

    def put(self, address: Address, connection: http.client.HTTPConnection) -> None:
        """Keep a connection whose response was read completely, for the next request."""
        with self._lock:
            idle = self._idle.setdefault(address, [])
            if len(idle) < self._per_address:
                idle.append(connection)
                return
        connection.close()

    def clear(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


@dataclass
class Listener:
    """A listener as moto knows it, and the local server that serves it."""

    arn: str
    load_balancer_arn: str
    port: int  # the listener's AWS port, e.g. 80
    protocol: str
    region: str
    server: ListenerServer | None = None
    rules_cache: tuple[int, float, list[dict[str, Any]]] | None = field(default=None, repr=False)

    @property
    def local_port(self) -> int:
        """The port on 127.0.0.1 that serves this listener."""
        return self.server.server_address[1] if self.server else 0

    @property
    def url(self) -> str:
        """The local base URL."""
        return f"http://{HOST}:{self.local_port}"

    @property
    def balancer_dimension(self) -> str:
        """`app/<name>/<id>`, the LoadBalancer metric dimension."""
        return rules.arn_dimension(self.load_balancer_arn)

    def start(self, router: ElbV2Provider) -> None:
        """Bind a free port and serve in a daemon thread."""
        self.server = ListenerServer(self, router)
        thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"elb-listener-{self.local_port}",
            daemon=True,
        )
        thread.start()

    def stop(self) -> None:
        """Stop accepting, and close the connections that clients keep open."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()


class ListenerServer(ThreadingHTTPServer):
    """A threaded HTTP server that knows its listener and closes client connections on stop."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, listener: Listener, router: ElbV2Provider) -> None:
        self.listener, self.router = listener, router
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((HOST, 0), ProxyHandler)

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
        """Shut down every open client connection (a deleted listener serves no more)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
