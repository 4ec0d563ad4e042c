"""A listener's requests: rule matching, forwarding, and the load balancer's own answers.

A request is matched against the listener's rules, then forwarded to a target (round robin
over the group's targets, through the shared pool of keep-alive connections), answered with
a fixed response, or redirected. Bodies stream in both directions: length-delimited and
chunked requests and responses are relayed as they arrive, except that request bodies up to
1 MiB are read first, so that a request that meets a pooled connection the target has just
closed can be sent once more on a fresh one.

Malformed requests are refused by the listener's HTTP layer before they get here. A request
with ambiguous framing (Content-Length and Transfer-Encoding together) is forwarded with
Transfer-Encoding alone, and both the client and the target connection close after it, as
the default desync mitigation mode does; TRACE is answered 405 (ALB does not support it).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..http.exchange import Exchange, http_date
from ..http.hop_by_hop import HOP_BY_HOP
from ..http.upstream import UpstreamRequest, UpstreamTimeout, UpstreamUnavailable
from ..metrics import MetricPublisher
from . import rules
from .dataplane import DataPlane
from .listener import Listener
from .metrics import record_request

BUFFERED_BODY = 1024 * 1024  # request bodies up to this size are read before forwarding
_HOP_BY_HOP = HOP_BY_HOP | {"expect"}  # the listener answers Expect: 100-continue itself
_REPLACED = frozenset(
    ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "x-amzn-trace-id")
)


class ListenerProxy:
    """Serves the requests of one listener: what its local HTTP server calls per request."""

    def __init__(self, listener: Listener, plane: DataPlane, publisher: MetricPublisher) -> None:
        self._listener, self._plane, self._publisher = listener, plane, publisher
        self.ready: Callable[[], bool] = lambda: True  # False while the load balancer provisions

    def __call__(self, exchange: Exchange) -> None:
        """Pick the matching rule and run its action."""
        if not self.ready():  # AWS: nothing answers at the DNS name before `active`
            raise ConnectionResetError("the load balancer is still provisioning")
        if exchange.method == "TRACE":
            exchange.close_connection = True  # like the listener's other refusals
            return self._elb_error(exchange, 405, "")
        body, stream = exchange.read_body(BUFFERED_BODY)  # Refusal: the listener answers
        request = rules.RequestInfo(
            method=exchange.method,
            path=exchange.path,
            query=exchange.query,
            host=_host_name(exchange.named.get("host", "")),
            headers=tuple(exchange.headers),
        )
        try:
            rule = rules.matching_rule(self._plane.rules_for(self._listener), request)
        except Exception:  # the listener was deleted under us, or moto failed
            rule = None
        action = rules.final_action(rule) if rule else None
        kind = (action or {}).get("Type")
        if kind == "forward":
            chosen = rules.choose_weighted(rules.forward_groups(action), random.random())
            self._forward(exchange, chosen or "", body, stream)
        elif kind == "fixed-response":
            self._fixed_response(exchange, action.get("FixedResponseConfig") or {})
        elif kind == "redirect":
            self._redirect(exchange, request, action.get("RedirectConfig") or {})
        else:
            self._elb_error(exchange, 503, "")

    # -- the load balancer's own answers -------------------------------------------------

    def _elb_error(self, exchange: Exchange, status: int, group: str) -> None:
        """405, 502, 503 or 504 with AWS's HTML page, counted as an ELB error."""
        exchange.respond(status, _elb_headers("text/html"), rules.error_page(status))
        self._record(group, status, "elb", None)

    def _fixed_response(self, exchange: Exchange, config: dict[str, Any]) -> None:
        """A fixed-response action."""
        status = int(config.get("StatusCode") or 200)
        # The charset suffix is how ALB fixed responses are commonly shown [unconfirmed].
        content_type = f"{config.get('ContentType') or 'text/plain'}; charset=utf-8"
        body = (config.get("MessageBody") or "").encode()
        exchange.respond(status, _elb_headers(content_type), body)
        self._record("", status, "fixed", None)

    def _redirect(
        self, exchange: Exchange, request: rules.RequestInfo, config: dict[str, Any]
    ) -> None:
        """A redirect action; a Location on this load balancer points at its local listener."""
        listener = self._listener
        status, protocol, host, port, path, query = rules.redirect(
            config, listener.protocol, request.host, listener.port, request.path, request.query
        )
        if host == request.host:
            local = self._plane.local_port(listener.load_balancer_arn, port)
            if local is not None:
                protocol, port = "http", local  # HTTPS listeners are plain HTTP locally
        headers = _elb_headers("text/html")
        headers.append(("Location", rules.location(protocol, host, port, path, query)))
        exchange.respond(status, headers, rules.error_page(status))
        self._record("", status, "redirect", None)

    def _record(self, group: str, status: int, origin: str, seconds: float | None) -> None:
        """Count the request in the AWS/ApplicationELB metrics."""
        balancer = self._listener.balancer_dimension
        record_request(self._publisher, balancer, group, status, origin, seconds)

    # -- forwarding ----------------------------------------------------------------------

    def _forward(
        self,
        exchange: Exchange,
        group_arn: str,
        body: bytes | None,
        stream: Iterator[bytes] | None,
    ) -> None:
        """Send the request to a target of the group and relay its response."""
        listener, plane = self._listener, self._plane
        group = plane.group(group_arn)
        dimension = rules.arn_dimension(group_arn) if group_arn else ""
        target = group.choose() if group is not None else None
        if group is None or target is None:
            return self._elb_error(exchange, 503, dimension)
        if group.target_type == "lambda":
            return self._elb_error(exchange, 502, dimension)  # Lambda targets are not invoked
        address = plane.resolve(target.id, target.port)
        if address is None:
            # AWS gives up connecting after 10 s with a 504; locally there is no route at all.
            return self._elb_error(exchange, 504, dimension)
        request = UpstreamRequest(
            exchange.method,
            exchange.target,
            self._upstream_headers(exchange),
            body,
            stream,
            chunked=exchange.chunked,
        )
        timeout = plane.idle_timeout(listener.load_balancer_arn, listener.region)
        try:
            reply = plane.pool.send(("http", *address), request, timeout)
        except UpstreamTimeout:  # no answer within the idle timeout
            return self._elb_error(exchange, 504, dimension)
        except UpstreamUnavailable:
            return self._elb_error(exchange, 502, dimension)
        self._record(dimension, reply.response.status, "target", reply.seconds)
        relayed = exchange.relay(reply.response)
        # After ambiguous framing the target connection is not reused (the client's closes).
        plane.pool.finish(reply, complete=relayed and not exchange.ambiguous)

    def _upstream_headers(self, exchange: Exchange) -> list[tuple[str, str]]:
        """The client's headers minus hop-by-hop ones, plus X-Forwarded-* and the trace id."""
        named = exchange.named
        dropped = _HOP_BY_HOP | _REPLACED | {"content-length"}  # set again below
        if "connection" in named:  # headers that Connection names are hop-by-hop too
            dropped = dropped | {t.strip().lower() for t in named["connection"].split(",")}
        headers = [(k, v) for k, v in exchange.headers if k.lower() not in dropped]
        trace = rules.trace_header(named.get("x-amzn-trace-id"), time.time(), os.urandom(12).hex())
        headers += [
            (
                "X-Forwarded-For",
                rules.forwarded_for(named.get("x-forwarded-for"), exchange.client_ip),
            ),
            ("X-Forwarded-Proto", self._listener.protocol.lower()),
            ("X-Forwarded-Port", str(self._listener.port)),
            ("X-Amzn-Trace-Id", trace),
        ]
        if exchange.chunked:  # never with a Content-Length (RFC 9112 6.3)
            headers.append(("Transfer-Encoding", "chunked"))
        elif exchange.length is not None:  # one value, even if the client repeated it
            headers.append(("Content-Length", str(exchange.length)))
        return headers


def _elb_headers(content_type: str) -> list[tuple[str, str]]:
    """Headers of a response that the load balancer generates itself."""
    return [("Server", "awselb/2.0"), ("Date", http_date()), ("Content-Type", content_type)]


def _host_name(host: str) -> str:
    """The Host header without its port."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
