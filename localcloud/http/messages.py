"""Whole-message serving, for services that answer a complete request with a complete response.

The request body is read to its end (however it is framed, within the listener's limits), the
service's handler turns the `HttpRequest` into an `HttpResponse`, and the answer goes out in
one write with its own Date and Content-Length. A method outside the served ones gets 405
with an Allow header. API Gateway APIs are served this way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .exchange import Exchange, http_date

log = logging.getLogger("localcloud.http")

_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "date"})


@dataclass
class HttpRequest:
    """A client request as the listener received it."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    port: int = 0

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive)."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class HttpResponse:
    """What the listener sends back."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class WholeMessages:
    """Serves an exchange by reading the whole request and writing the handler's response."""

    handle: Callable[[HttpRequest], HttpResponse]
    error: Callable[[int, str], HttpResponse]  # the service's own answer for 405 and 500
    methods: frozenset[str] | None = None  # the methods served; others get 405

    def __call__(self, exchange: Exchange) -> None:
        """Read, handle, answer; a body that cannot be read is the listener's to refuse."""
        if self.methods is not None and exchange.method not in self.methods:
            response = self.error(405, "Method Not Allowed")
            response.headers.append(("Allow", ", ".join(sorted(self.methods))))
            exchange.close_connection = True  # what follows on it was sent by a confused client
            self._write(exchange, response)
            return
        body = exchange.whole_body()
        request = HttpRequest(
            method=exchange.method,
            raw_path=exchange.path,
            raw_query=exchange.query,
            headers=list(exchange.headers),
            body=body,
            source_ip=exchange.client_ip,
            protocol=exchange.version,
            port=exchange.local_port,
        )
        try:
            response = self.handle(request)
        except Exception:  # a bug in the service must still get an answer of its kind
            log.exception("request %s %s failed", exchange.method, exchange.target)
            response = self.error(500, "Internal Server Error")
        self._write(exchange, response)

    @staticmethod
    def _write(exchange: Exchange, response: HttpResponse) -> None:
        """The response with the listener's own framing headers; HEAD keeps its length."""
        headers = [(k, v) for k, v in response.headers if k.lower() not in _FRAMING]
        headers.append(("Date", http_date()))
        length = None
        if exchange.method == "HEAD":
            length = next(
                (v for k, v in response.headers if k.lower() == "content-length" and v), None
            )
        exchange.respond(response.status, headers, response.body, length)
