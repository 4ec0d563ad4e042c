"""HTTP_PROXY integrations: forward a request to its backend URL with http.client.

Connections are kept per thread and per backend (scheme, host, port), so a client's
keep-alive connection to the API (served by one listener thread) reuses one backend
connection as well. A reused connection that the backend closed while idle is retried once
on a fresh one, as HTTP clients commonly do.
"""

from __future__ import annotations

import http.client
import socket
import threading
from urllib.parse import urlsplit

from ..hop_by_hop import HOP_BY_HOP
from .events import HttpResponse

# Host is the backend's own (API Gateway sets it from the integration URL); Content-Length
# is recomputed.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class UpstreamTimeout(Exception):
    """The backend did not answer within the integration timeout."""


class UpstreamUnavailable(Exception):
    """The backend could not be reached (refused, unknown host, reset)."""


class Forwarder:
    """Sends requests to HTTP backends over per-thread keep-alive connections."""

    def __init__(self) -> None:
        self._local = threading.local()

    def forward(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_s: float,
    ) -> HttpResponse:
        """The backend's response; UpstreamTimeout or UpstreamUnavailable on failure."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamUnavailable(f"not an HTTP URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = [(k, v) for k, v in headers if k.lower() not in _NOT_FORWARDED]
        for attempt in (1, 2):
            connection, reused = self._connection(key, timeout_s)
            try:
                if connection.sock is None:
                    connection.connect()
                    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return self._exchange(connection, method, target, sent, body)
            except TimeoutError as problem:
                self._drop(key)
                raise UpstreamTimeout(str(problem)) from problem
            except _STALE as problem:
                self._drop(key)
                if reused and attempt == 1:
                    continue  # the backend closed the idle connection: try a fresh one
                raise UpstreamUnavailable(str(problem)) from problem
            except (OSError, http.client.HTTPException) as problem:
                self._drop(key)
                raise UpstreamUnavailable(str(problem)) from problem
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's backend connections."""
        for connection in getattr(self._local, "connections", {}).values():
            connection.close()
        self._local.connections = {}

    @staticmethod
    def _exchange(
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> HttpResponse:
        """One request and its whole response on an open or new connection."""
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body or method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        payload = response.read()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        if method != "HEAD":
            kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
        if response.will_close:
            connection.close()
        return HttpResponse(response.status, kept, payload)

    def _connection(
        self, key: tuple[str, str, int], timeout_s: float
    ) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to a backend (and whether it was used before)."""
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get(key)
        reused = connection is not None and connection.sock is not None
        if connection is None:
            scheme, host, port = key
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            connection = cls(host, port, timeout=timeout_s)
            connections[key] = connection
        connection.timeout = timeout_s
        if connection.sock is not None:
            connection.sock.settimeout(timeout_s)
        return connection, reused

    def _drop(self, key: tuple[str, str, int]) -> None:
        """Close and forget this thread's connection to a backend."""
        connection = getattr(self._local, "connections", {}).pop(key, None)
        if connection is not None:
            connection.close()
