"""AWS/ApiGateway metrics of an HTTP API: the data points of one request.

They go to the local cloud's batched publisher (`CloudContext.publisher`), which writes them
to the local CloudWatch about once a second, so a request thread only appends samples.
"""

from __future__ import annotations

from ..metrics import MetricPublisher
from ..metrics.publisher import DataPoint

NAMESPACE = "AWS/ApiGateway"

# (metric name, dimensions, value, unit)


def request_data(
    api_id: str, stage: str, status: int, latency_ms: float, integration_ms: float | None
) -> list[DataPoint]:
    """Count, 4xx, 5xx, Latency and (if an integration ran) IntegrationLatency, by ApiId and
    by ApiId + Stage."""
    values = [
        ("Count", 1, "Count"),
        ("4xx", int(400 <= status < 500), "Count"),
        ("5xx", int(status >= 500), "Count"),
        ("Latency", round(latency_ms, 3), "Milliseconds"),
    ]
    if integration_ms is not None:
        values.append(("IntegrationLatency", round(integration_ms, 3), "Milliseconds"))
    scopes = ({"ApiId": api_id}, {"ApiId": api_id, "Stage": stage})
    return [(name, dims, value, unit) for dims in scopes for name, value, unit in values]


def record_request(
    publisher: MetricPublisher,
    api_id: str,
    stage: str,
    timestamp: float,
    status: int,
    latency_ms: float,
    integration_ms: float | None,
) -> None:
    """Hand one request to the batched publisher, which works out its data points later."""
    args = (api_id, stage, status, latency_ms, integration_ms)
    publisher.record_with(NAMESPACE, request_data, args, timestamp)
