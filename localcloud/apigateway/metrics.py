"""AWS/ApiGateway metrics of a REST API: by ApiName, and by ApiName and Stage.

Count, 4XXError, 5XXError, Latency and IntegrationLatency
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html);
the arithmetic is the HTTP APIs' (`localcloud.apigatewayv2.metrics`), only the names differ.
"""

from __future__ import annotations

from ..apigatewayv2.metrics import NAMESPACE, RequestMetrics

REST_API = RequestMetrics("ApiName", "4XXError", "5XXError")

__all__ = ["NAMESPACE", "REST_API"]
