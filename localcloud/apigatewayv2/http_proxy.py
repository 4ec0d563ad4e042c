"""HTTP_PROXY integrations: the request goes to the integration's URL, the answer comes back.

Connections come from the provider's keep-alive pool, shared by all of its listeners' threads.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..http.hop_by_hop import HOP_BY_HOP
from ..http.messages import HttpResponse
from ..http.upstream import UpstreamPool, UpstreamRequest, UpstreamUnavailable

# Host is the backend's own (API Gateway sets it from the integration URL); Content-Length
# is recomputed.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}


def forward(
    pool: UpstreamPool,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    timeout_s: float,
) -> HttpResponse:
    """The backend's whole response; UpstreamTimeout or UpstreamUnavailable on failure."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamUnavailable(f"not an HTTP URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = [(k, v) for k, v in headers if k.lower() not in _NOT_FORWARDED]
    if body or method in ("POST", "PUT", "PATCH"):
        sent.append(("Content-Length", str(len(body))))
    request = UpstreamRequest(method, target, sent, body)
    response, payload = pool.fetch((parts.scheme, parts.hostname, port), request, timeout_s)
    kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
    if method != "HEAD":
        kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
    return HttpResponse(response.status, kept, payload)
