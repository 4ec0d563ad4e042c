"""Keep-alive connections to the servers behind a listener (ALB targets, HTTP_PROXY backends).

Idle connections are pooled per origin and shared by all listener threads, so a forwarded
request normally costs no new TCP connection. A request that meets a pooled connection the
upstream has just closed is sent once more on a fresh one, when it can be sent again (its
body is in memory, not a stream already consumed), as HTTP clients commonly do.
"""

from __future__ import annotations

import http.client
import select
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

Origin = tuple[str, str, int]  # scheme ("http" or "https"), host, port


class UpstreamTimeout(Exception):
    """The upstream did not answer within the timeout."""


class UpstreamUnavailable(Exception):
    """The upstream could not be reached, or broke the exchange off."""


@dataclass
class UpstreamRequest:
    """What to send upstream: the body is whole bytes or a stream of pieces."""

    method: str
    target: str  # the path and the query string
    headers: list[tuple[str, str]]  # without a Host header, the upstream's own is sent
    body: bytes | None = None
    stream: Iterator[bytes] | None = None
    chunked: bool = False  # the stream's pieces go out chunk-encoded


@dataclass
class UpstreamReply:
    """An upstream response whose body is still to be read, and where it came from."""

    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection
    origin: Origin
    seconds: float  # from sending the request to having the response's status and headers


class UpstreamPool:
    """Idle keep-alive connections to upstream servers, shared by all listener threads."""

    def __init__(self, per_origin: int = 32) -> None:
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._per_origin = per_origin

    def send(self, origin: Origin, request: UpstreamRequest, timeout: float) -> UpstreamReply:
        """Send the request and read the response head; pass the reply to `finish` after.

        UpstreamTimeout when no answer comes within `timeout` seconds, UpstreamUnavailable
        when the upstream cannot be reached or breaks the connection.
        """
        replayable = request.stream is None
        for attempt in range(2):
            connection, reused = self._get(origin, timeout)
            try:
                started = time.perf_counter()
                _write(connection, request)
                response = connection.getresponse()
                return UpstreamReply(response, connection, origin, time.perf_counter() - started)
            except TimeoutError as problem:
                connection.close()
                raise UpstreamTimeout(str(problem)) from problem
            except (OSError, http.client.HTTPException) as problem:
                connection.close()
                if reused and replayable and attempt == 0:
                    continue  # the upstream closed a pooled connection: one fresh try
                raise UpstreamUnavailable(str(problem)) from problem
            except BaseException:  # e.g. a client body that cannot be read: nothing to reuse
                connection.close()
                raise
        raise AssertionError("unreachable")

    def fetch(
        self, origin: Origin, request: UpstreamRequest, timeout: float
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Send the request and read the whole response: (response, body)."""
        reply = self.send(origin, request, timeout)
        try:
            body = reply.response.read()
        except TimeoutError as problem:
            reply.connection.close()
            raise UpstreamTimeout(str(problem)) from problem
        except (OSError, http.client.HTTPException) as problem:
            reply.connection.close()
            raise UpstreamUnavailable(str(problem)) from problem
        self.finish(reply, complete=True)
        return reply.response, body

    def finish(self, reply: UpstreamReply, complete: bool) -> None:
        """Keep the connection for the next request if its response was read completely."""
        connection = reply.connection
        if not complete or reply.response.will_close:
            connection.close()
            return
        with self._lock:
            idle = self._idle.setdefault(reply.origin, [])
            if len(idle) < self._per_origin:
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

    def _get(self, origin: Origin, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection that the upstream has not closed, or a new one; (conn, reused)."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                scheme, host, port = origin
                cls = (
                    http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
                )
                return cls(host, port, timeout=timeout), False
            sock = connection.sock
            # An idle connection is readable only when the upstream closed it (or misbehaved).
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                sock.settimeout(timeout)
                return connection, True
            connection.close()


def _write(connection: http.client.HTTPConnection, request: UpstreamRequest) -> None:
    """Write the request: line, headers and body (a stream piece by piece)."""
    own_host = any(name.lower() == "host" for name, _ in request.headers)
    connection.putrequest(
        request.method, request.target, skip_host=own_host, skip_accept_encoding=True
    )
    for name, value in request.headers:
        connection.putheader(name, value)
    if request.stream is None:
        connection.endheaders(request.body or None)
        return
    connection.endheaders()
    for piece in request.stream:
        connection.send(b"%X\r\n%s\r\n" % (len(piece), piece) if request.chunked else piece)
    if request.chunked:
        connection.send(b"0\r\n\r\n")
