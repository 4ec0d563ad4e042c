"""The request handler of a listener: rule matching, forwarding, and the ALB's own answers.

A request is matched against the listener's rules, then forwarded to a target (round
robin over the group's targets, through the provider's pool of keep-alive connections),
answered with a fixed response, or redirected. Bodies stream in both directions:
length-delimited and chunked requests and responses are relayed as they arrive, except
that request bodies up to 1 MiB are read first, so that a request that meets a pooled
connection the target has just closed can be sent once more on a fresh one.
"""

from __future__ import annotations

import http.client
import os
import random
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from ..hop_by_hop import HOP_BY_HOP
from . import rules

if TYPE_CHECKING:
    from .listener import Address, Listener, ListenerServer

BUFFERED_BODY = 1024 * 1024  # request bodies up to this size are read before forwarding
COPY_SIZE = 64 * 1024
_HOP_BY_HOP = HOP_BY_HOP | {"expect"}  # the listener answers Expect: 100-continue itself
_REPLACED = frozenset(
    ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "x-amzn-trace-id")
)
_NO_BODY = (204, 304)


def _chunks(stream: Any) -> Iterator[bytes]:
    """The decoded chunks of a chunked request body (trailers are read and dropped)."""
    while True:
        size_line = stream.readline(1026)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return
        data = stream.read(size)
        stream.readline(3)
        yield data


def _fixed(stream: Any, length: int) -> Iterator[bytes]:
    """A length-delimited request body in pieces."""
    while length > 0:
        data = stream.read(min(COPY_SIZE, length))
        if not data:
            raise ConnectionError("client closed the connection mid-body")
        length -= len(data)
        yield data


class ProxyHandler(BaseHTTPRequestHandler):
    """Serves one client connection of a listener (keep-alive: many requests)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60.0  # like AWS's default idle timeout: idle client connections are closed
    server: ListenerServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the daemon logs no access lines."""

    def handle_one_request(self) -> None:
        """Read one request line and headers, then route the request (any method)."""
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
            self._route()
        except (TimeoutError, ConnectionError, ValueError):
            self.close_connection = True

    # -- routing -------------------------------------------------------------------------

    def _route(self) -> None:
        """Pick the matching rule and run its action."""
        listener, router = self.server.listener, self.server.router
        self._items = self.headers.items()
        self._named: dict[str, str] = {}  # lower-case name -> values joined by ", "
        for name, value in self._items:
            key = name.lower()
            self._named[key] = f"{self._named[key]}, {value}" if key in self._named else value
        self._chunked = "chunked" in self._named.get("transfer-encoding", "").lower()
        self._body_left, self._stream = True, None
        try:
            self._body, self._stream = self._request_body()
        except ValueError:  # an unreadable Content-Length or chunk size
            self.close_connection = True
            self._answer(400, self._elb_headers("text/html"), rules.error_page(400))
            return
        path, _, query = self.path.partition("?")
        self._request = rules.RequestInfo(
            method=self.command,
            path=path,
            query=query,
            host=_host_name(self._named.get("host", "")),
            headers=tuple(self._items),
        )
        try:
            rule = rules.matching_rule(router.rules_for(listener), self._request)
        except Exception:  # the listener was deleted under us, or moto failed
            rule = None
        action = rules.final_action(rule) if rule else None
        kind = (action or {}).get("Type")
        if kind == "forward":
            groups = rules.forward_groups(action)
            chosen = rules.choose_weighted(groups, random.random())
            self._forward(chosen or "")
        elif kind == "fixed-response":
            self._fixed_response(action.get("FixedResponseConfig") or {})
        elif kind == "redirect":
            self._redirect(action.get("RedirectConfig") or {})
        else:
            self._elb_error(503, "")

    def _request_body(self) -> tuple[bytes | None, Iterator[bytes] | None]:
        """(whole body, None) for small bodies, (None, pieces) for chunked or large ones."""
        if self._chunked:
            return None, _chunks(self.rfile)
        length = int(self._named.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length <= BUFFERED_BODY:
            body = self.rfile.read(length) if length else b""
            self._body_left = False
            return body, None
        return None, _fixed(self.rfile, length)

    def _finish_body(self) -> None:
        """A body that was not read to its end leaves the connection unusable: close it."""
        if self._body_left:
            self.close_connection = True

    # -- the load balancer's own answers -------------------------------------------------

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Write a complete response that the load balancer generated."""
        self._finish_body()
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (b"" if self.command == "HEAD" else body))

    def _elb_error(self, status: int, group: str) -> None:
        """502, 503 or 504 with AWS's HTML page, counted as an ELB error."""
        self._answer(status, self._elb_headers("text/html"), rules.error_page(status))
        listener = self.server.listener
        self.server.router.metrics.record(listener.balancer_dimension, group, status, "elb", None)

    def _elb_headers(self, content_type: str) -> list[tuple[str, str]]:
        """Headers of an ALB-generated response."""
        return [
            ("Server", "awselb/2.0"),
            ("Date", self.date_time_string()),
            ("Content-Type", content_type),
        ]

    def _fixed_response(self, config: dict[str, Any]) -> None:
        """A fixed-response action."""
        status = int(config.get("StatusCode") or 200)
        # The charset suffix is how ALB fixed responses are commonly shown [unconfirmed].
        content_type = f"{config.get('ContentType') or 'text/plain'}; charset=utf-8"
        body = (config.get("MessageBody") or "").encode()
        self._answer(status, self._elb_headers(content_type), body)
        listener = self.server.listener
        self.server.router.metrics.record(listener.balancer_dimension, "", status, "fixed", None)

    def _redirect(self, config: dict[str, Any]) -> None:
        """A redirect action; a Location on this load balancer points at its local listener."""
        listener, router = self.server.listener, self.server.router
        request = self._request
        status, protocol, host, port, path, query = rules.redirect(
            config, listener.protocol, request.host, listener.port, request.path, request.query
        )
        if host == request.host:
            local = router.local_port(listener.load_balancer_arn, port)
            if local is not None:
                protocol, port = "http", local  # HTTPS listeners are plain HTTP locally
        headers = self._elb_headers("text/html")
        headers.append(("Location", rules.location(protocol, host, port, path, query)))
        self._answer(status, headers, rules.error_page(status))
        router.metrics.record(listener.balancer_dimension, "", status, "redirect", None)

    # -- forwarding ----------------------------------------------------------------------

    def _forward(self, group_arn: str) -> None:
        """Send the request to a target of the group and relay its response."""
        listener, router = self.server.listener, self.server.router
        group = router.group(group_arn)
        dimension = rules.arn_dimension(group_arn) if group_arn else ""
        target = group.choose() if group is not None else None
        if target is None:
            return self._elb_error(503, dimension)
        if group.target_type == "lambda":
            return self._elb_error(502, dimension)  # Lambda targets are not invoked locally
        address = router.resolve(target.id, target.port)
        if address is None:
            # AWS gives up connecting after 10 s with a 504; locally there is no route at all.
            return self._elb_error(504, dimension)
        timeout = router.idle_timeout(listener.load_balancer_arn, listener.region)
        headers = self._upstream_headers(listener)
        replayable = self._stream is None
        for attempt in range(2):
            connection, reused = router.pool.get(address, timeout)
            try:
                started = time.perf_counter()
                self._send(connection, headers)
                response = connection.getresponse()
                elapsed = time.perf_counter() - started
                break
            except TimeoutError:  # no answer within the idle timeout
                connection.close()
                return self._elb_error(504, dimension)
            except (OSError, http.client.HTTPException):
                connection.close()
                if reused and replayable and attempt == 0:
                    continue  # the target closed a pooled connection: one fresh try
                return self._elb_error(502, dimension)
        router.metrics.record(
            listener.balancer_dimension, dimension, response.status, "target", elapsed
        )
        self._relay(response, connection, address)

    def _upstream_headers(self, listener: Listener) -> list[tuple[str, str]]:
        """The client's headers minus hop-by-hop ones, plus X-Forwarded-* and the trace id."""
        dropped = _HOP_BY_HOP | _REPLACED
        if "connection" in self._named:  # headers that Connection names are hop-by-hop too
            dropped = dropped | {t.strip().lower() for t in self._named["connection"].split(",")}
        headers = [(k, v) for k, v in self._items if k.lower() not in dropped]
        trace = rules.trace_header(
            self._named.get("x-amzn-trace-id"), time.time(), os.urandom(12).hex()
        )
        headers += [
            (
                "X-Forwarded-For",
                rules.forwarded_for(self._named.get("x-forwarded-for"), self.client_address[0]),
            ),
            ("X-Forwarded-Proto", listener.protocol.lower()),
            ("X-Forwarded-Port", str(listener.port)),
            ("X-Amzn-Trace-Id", trace),
        ]
        if self._chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        return headers

    def _send(self, connection: http.client.HTTPConnection, headers: list[tuple[str, str]]) -> None:
        """Write the request to the target (the Host header is the client's)."""
        connection.putrequest(
            self.command, self.path, skip_host="host" in self._named, skip_accept_encoding=True
        )
        for name, value in headers:
            connection.putheader(name, value)
        if self._stream is None:
            connection.endheaders(self._body or None)
            return
        connection.endheaders()
        chunked = self._chunked
        for piece in self._stream:
            connection.send(b"%X\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            connection.send(b"0\r\n\r\n")
        self._body_left = False

    def _relay(
        self,
        response: http.client.HTTPResponse,
        connection: http.client.HTTPConnection,
        address: Address,
    ) -> None:
        """Pass the target's response through unchanged (hop-by-hop headers aside)."""
        headers = [(k, v) for k, v in response.msg.items() if k.lower() not in _HOP_BY_HOP]
        has_body = self.command != "HEAD" and response.status not in _NO_BODY
        length = response.getheader("Content-Length")
        http10 = self.request_version == "HTTP/1.0"
        chunk_out = has_body and length is None and not http10
        if has_body and length is None and http10:
            self.close_connection = True  # the end of the body is the end of the connection
        if chunk_out:
            headers.append(("Transfer-Encoding", "chunked"))
        if self.close_connection:
            headers.append(("Connection", "close"))
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        lines += [f"{k}: {v}" for k, v in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if not has_body:
                response.read()
                self.wfile.write(head)
            elif length is not None and length.isdigit() and int(length) <= COPY_SIZE:
                self.wfile.write(head + response.read())
            else:
                self.wfile.write(head)
                while piece := response.read1(COPY_SIZE):
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece) if chunk_out else piece)
                if chunk_out:
                    self.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException):
            # Mid-body failure on either side: the response cannot be completed.
            connection.close()
            self.close_connection = True
            return
        if response.will_close:
            connection.close()
        else:
            self.server.router.pool.put(address, connection)


def _host_name(host: str) -> str:
    """The Host header without its port."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _reason(status: int) -> str:
    """The reason phrase of a status code."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
