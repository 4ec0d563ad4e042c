"""The API Gateway v2 provider (placeholder until HTTP API routing lands).

Where the local cloud differs from AWS:
- Nothing is served locally yet: every API Gateway v2 operation is moto's.
"""

from __future__ import annotations

from ..registry import Provider


class ApiGatewayV2Provider(Provider):
    """Local HTTP API data plane."""

    service = "apigatewayv2"
