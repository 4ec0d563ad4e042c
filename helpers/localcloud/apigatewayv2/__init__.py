"""Local API Gateway HTTP APIs: one listener per API, routes, HTTP_PROXY and AWS_PROXY."""

from .provider import ApiGatewayV2Provider

__all__ = ["ApiGatewayV2Provider"]
