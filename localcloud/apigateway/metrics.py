"""AWS/ApiGateway metrics of a REST API: the data points of one request.

REST APIs are measured by ApiName, and by ApiName and Stage
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html):
Count, 4XXError, 5XXError, Latency and IntegrationLatency. They go to the batched publisher,
so a request thread only appends one record.
"""

from __future__ import annotations

from ..metrics import MetricPublisher
from ..metrics.publisher import DataPoint

NAMESPACE = "AWS/ApiGateway"


def request_data(
    api_name: str, stage: str, status: int, latency_ms: float, integration_ms: float | None
) -> list[DataPoint]:
    """The request's samples under both dimension sets (IntegrationLatency if one ran)."""
    values = [
        ("Count", 1, "Count"),
        ("4XXError", int(400 <= status < 500), "Count"),
        ("5XXError", int(status >= 500), "Count"),
        ("Latency", round(latency_ms, 3), "Milliseconds"),
    ]
    if integration_ms is not None:
        values.append(("IntegrationLatency", round(integration_ms, 3), "Milliseconds"))
    scopes = ({"ApiName": api_name}, {"ApiName": api_name, "Stage": stage})
    return [(name, dims, value, unit) for dims in scopes for name, value, unit in values]


def record_request(
    publisher: MetricPublisher,
    api_name: str,
    stage: str,
    timestamp: float,
    status: int,
    latency_ms: float,
    integration_ms: float | None,
) -> None:
    """Hand one request to the batched publisher."""
    args = (api_name, stage, status, latency_ms, integration_ms)
    publisher.record_with(NAMESPACE, request_data, args, timestamp)
