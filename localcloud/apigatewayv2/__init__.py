"""Local API Gateway HTTP APIs: one listener per API, routes, HTTP_PROXY and AWS_PROXY."""

from ..services import Service
from .provider import ApiGatewayV2Provider

SERVICE = Service(
    "apigatewayv2",
    ApiGatewayV2Provider,
    operations={
        "CreateApi": "",
        "GetApi": "",
        "GetApis": "",
        "CreateIntegration": "AWS_PROXY defaults IntegrationMethod to POST",
        "GetIntegrations": "",
        "DeleteIntegration": "",
        "CreateRoute": "",
        "GetRoutes": "",
        "UpdateRoute": "",
        "DeleteRoute": "",
        "CreateStage": "AutoDeploy is stored; the local listener always serves the current routes",
        "GetStages": "",
        "UpdateStage": "",
        "DeleteApi": "",
    },
)

__all__ = ["SERVICE", "ApiGatewayV2Provider"]
