"""AWS/ApiGateway metrics of one request, as HTTP APIs and REST APIs name them.

Both flavours publish Count, client errors, server errors, Latency and IntegrationLatency
under one dimension for the API and the same plus Stage; they differ in the names
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html,
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html).
The samples go to the local cloud's batched publisher (`CloudContext.publisher`), which works
out the data points on its flush thread, so a request thread only appends one note.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import MetricPublisher
from ..metrics.publisher import DataPoint

NAMESPACE = "AWS/ApiGateway"


@dataclass(frozen=True)
class RequestMetrics:
    """How one flavour of API names its request metrics and the API's dimension."""

    dimension: str  # "ApiId" for HTTP APIs, "ApiName" for REST APIs
    client_errors: str  # "4xx" / "4XXError"
    server_errors: str  # "5xx" / "5XXError"

    def data(
        self, api: str, stage: str, status: int, latency_ms: float, integration_ms: float | None
    ) -> list[DataPoint]:
        """The request's samples under both dimension sets (IntegrationLatency if one ran)."""
        values = [
            ("Count", 1, "Count"),
            (self.client_errors, int(400 <= status < 500), "Count"),
            (self.server_errors, int(status >= 500), "Count"),
            ("Latency", round(latency_ms, 3), "Milliseconds"),
        ]
        if integration_ms is not None:
            values.append(("IntegrationLatency", round(integration_ms, 3), "Milliseconds"))
        scopes = ({self.dimension: api}, {self.dimension: api, "Stage": stage})
        return [(name, dims, value, unit) for dims in scopes for name, value, unit in values]

    def record(
        self,
        publisher: MetricPublisher,
        api: str,
        stage: str,
        timestamp: float,
        status: int,
        latency_ms: float,
        integration_ms: float | None,
    ) -> None:
        """Hand one request to the batched publisher, which works out its data points later."""
        args = (api, stage, status, latency_ms, integration_ms)
        publisher.record_with(NAMESPACE, self.data, args, timestamp)


HTTP_API = RequestMetrics("ApiId", "4xx", "5xx")
