"""HTTP calls from the notebooks: one request with its status and timing, and a short load.

Standard library only (http.client), so that what the notebook measures is the service
and the load balancer in front of it, not a client library.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from .pacing import progress_bar


@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, headers, body (parsed JSON when it is JSON) and duration."""

    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the URL's host and the request target (path and query)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"url must start with http:// or https://, not {url!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return kind(parts.netloc, timeout=timeout), target


def _send(connection: http.client.HTTPConnection, method: str, target: str, body: Any) -> Response:
    """Send one request on an open connection and read the whole answer."""
    headers = {"Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    connection.request(method, target, body=payload, headers=headers)
    answer = connection.getresponse()
    raw = answer.read()
    seconds = time.perf_counter() - started
    content_type = answer.getheader("Content-Type", "")
    parsed: Any = raw.decode("utf-8", errors="replace")
    if "json" in content_type and raw:
        parsed = json.loads(raw)
    return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, parsed, seconds)


def request(method: str, url: str, body: Any = None, *, timeout: float = 30) -> Response:
    """One request (the body, if any, is sent as JSON); never raises for 4xx/5xx."""
    connection, target = _connection(url, timeout)
    try:
        return _send(connection, method.upper(), target, body)
    finally:
        connection.close()


def load(url: str, requests: int, *, concurrency: int = 4, timeout: float = 30) -> pd.DataFrame:
    """GET the URL `requests` times from `concurrency` keep-alive clients; one row per call."""
    if requests < 1 or not 1 <= concurrency <= 64:
        raise ValueError("requests must be at least 1 and concurrency between 1 and 64")
    local = threading.local()
    bar = progress_bar(total=requests, desc="requests", leave=False)

    def one(_: int) -> dict[str, Any]:
        if not hasattr(local, "connection"):
            local.connection, local.target = _connection(url, timeout)
        started = time.time()
        try:
            answer = _send(local.connection, "GET", local.target, None)
        except (OSError, http.client.HTTPException):
            local.connection.close()  # reconnect on the next call
            del local.connection
            bar.update()
            return {"started": started, "status": 0, "seconds": time.time() - started}
        bar.update()
        instance = answer.body.get("instance") if isinstance(answer.body, dict) else None
        return {
            "started": started,
            "status": answer.status,
            "seconds": answer.seconds,
            "instance": instance,
        }

    with ThreadPoolExecutor(concurrency) as pool:
        rows = list(pool.map(one, range(requests)))
    bar.close()
    frame = pd.DataFrame(rows)
    frame["started"] = pd.to_datetime(frame["started"], unit="s", utc=True)
    return frame
