"""Local API Gateway REST APIs (v1): one listener per API, deployed stages, Lambda proxy."""

from ..services import Service
from .provider import ApiGatewayProvider

SERVICE = Service(
    "apigateway",
    ApiGatewayProvider,
    operations={
        "CreateRestApi": "",
        "GetRestApi": "",
        "GetRestApis": "",
        "GetResources": "",
        "CreateResource": "a duplicate or second variable path part is a ConflictException",
        "PutMethod": "an existing method is a ConflictException, as on AWS",
        "PutMethodResponse": "stored; AWS_PROXY responses are not shaped by it",
        "PutIntegration": "AWS_PROXY (Lambda) and HTTP_PROXY are run locally; timeoutInMillis "
        "50..29000, default 29000",
        "CreateDeployment": "freezes the resource tree: stages serve what was deployed",
        "GetDeployments": "",
        "CreateStage": "",
        "GetStage": "",
        "GetStages": "",
        "UpdateStage": "deploymentId, variables and accessLogSettings are served at once",
        "DeleteRestApi": "",
    },
)

__all__ = ["SERVICE", "ApiGatewayProvider"]
