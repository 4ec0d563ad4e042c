"""UpdateStage on moto's stage record, which moto keeps but has no operation to change.

moto keeps a stage's settings as they travel on the wire (camelCase members); UpdateStage's
parameters arrive as boto3 names them (PascalCase). A setting the request gives replaces the
stage's; the others stay, as UpdateStage is a partial update
(https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename.html).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# UpdateStage parameter -> the attribute of moto's Stage that holds it
_PLAIN = {
    "AutoDeploy": "auto_deploy",
    "ClientCertificateId": "client_certificate_id",
    "Description": "description",
}


def update_stage(stage: Any, params: dict[str, Any]) -> None:
    """Apply the settings `params` gives to moto's Stage object (call under the moto lock)."""
    for name, attribute in _PLAIN.items():
        if name in params:
            setattr(stage, attribute, params[name])
    if "StageVariables" in params:
        stage.stage_variables = dict(params["StageVariables"])
    if "AccessLogSettings" in params:
        stage.access_log_settings = _wire(params["AccessLogSettings"])
    if "DefaultRouteSettings" in params:
        stage.default_route_settings = _wire(params["DefaultRouteSettings"])
    if "RouteSettings" in params:  # route keys ("GET /items") stay as they are
        stage.route_settings = {key: _wire(value) for key, value in params["RouteSettings"].items()}
    stage.updated = dt.datetime.now()


def _wire(settings: dict[str, Any]) -> dict[str, Any]:
    """A settings structure's members by their wire names (DestinationArn -> destinationArn)."""
    return {name[:1].lower() + name[1:]: value for name, value in settings.items()}
