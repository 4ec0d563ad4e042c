"""A listener as moto knows it, and the local HTTP server that serves it.

The server reads requests within an ALB's documented limits (16 K per request line, 16 K per
header, 64 K for the whole request header) and refuses malformed ones with the load
balancer's own HTML error page: 400, 501 for an unsupported Transfer-Encoding, 505 for
another HTTP version (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import HOST
from ..http.exchange import http_date
from ..http.framing import Limits
from ..http.messages import HttpResponse
from ..http.server import HttpListener, Serve
from .rules import arn_dimension, error_page

IDLE_TIMEOUT = 60.0  # like AWS's default client idle timeout: idle connections are closed
# Over these an ALB answers 400; ambiguous framing is served, then both connections close,
# as in the default (defensive) desync mitigation mode.
LIMITS = Limits(line=16 * 1024, head=64 * 1024, too_large=400)


@dataclass
class Listener:
    """One HTTP or HTTPS listener of a load balancer, served on 127.0.0.1."""

    arn: str
    load_balancer_arn: str
    port: int  # the listener's AWS port, e.g. 80
    protocol: str
    region: str
    server: HttpListener | None = None
    rules_cache: tuple[int, float, list[dict[str, Any]]] | None = field(default=None, repr=False)

    @property
    def local_port(self) -> int:
        """The port on 127.0.0.1 that serves this listener."""
        return self.server.port if self.server else 0

    @property
    def url(self) -> str:
        """The local base URL."""
        return f"http://{HOST}:{self.local_port}"

    @property
    def balancer_dimension(self) -> str:
        """`app/<name>/<id>`, the LoadBalancer metric dimension."""
        return arn_dimension(self.load_balancer_arn)

    def start(self, serve: Serve) -> None:
        """Bind a free port and serve requests with `serve`."""
        self.server = HttpListener("elb-listener", serve, IDLE_TIMEOUT, LIMITS, error_answer)
        self.server.start()

    def stop(self) -> None:
        """Stop accepting, and close the connections that clients keep open."""
        server, self.server = self.server, None
        if server is not None:
            server.stop()


def error_answer(status: int, message: str) -> HttpResponse:
    """The load balancer's own HTML error page, for a request its listener refuses."""
    headers = [("Server", "awselb/2.0"), ("Date", http_date()), ("Content-Type", "text/html")]
    return HttpResponse(status, headers, error_page(status))
