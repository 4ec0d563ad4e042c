"""moto as the local cloud's control plane: its WSGI app, configured as the course needs.

moto keeps the state of IAM, EC2, ECR, Lambda, ECS, ELBv2, API Gateway, RDS, Secrets Manager,
DynamoDB and Logs. It runs inside the daemon's process, behind the edge. Settings applied at
start (see the project's moto findings):

- AWS-managed IAM policies are loaded, so `AWSLambdaBasicExecutionRole` & co. can be attached;
- Lambda runs in moto's no-Docker mode (our Lambda provider executes code; this must be set
  before any function exists, because switching replaces moto's Lambda backend);
- ECS tasks do not drift towards STOPPED on every `describe_tasks` call;
- werkzeug's per-request access log is silenced.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# One moto request at a time: moto's backends are plain dicts and lists, not built for
# concurrent writers. Calls take a few milliseconds, so serialising them costs little.
MOTO_LOCK = threading.RLock()

_STARTUP_CONFIG: list[tuple[str, dict[str, Any]]] = [
    ("/moto-api/config", {"lambda": {"use_docker": False}}),
    (
        "/moto-api/state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    ),
]


def create_moto_app() -> WsgiApp:
    """Build moto's dispatcher app, configured for the course; import moto only here."""
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    configure(app)
    return app


def configure(app: WsgiApp) -> None:
    """Apply the course's moto settings through moto's own control API."""
    for path, body in _STARTUP_CONFIG:
        status = _post(app, path, body)
        if status >= 300:
            raise RuntimeError(f"moto refused its start-up setting {path}: HTTP {status}")


def reset(app: WsgiApp) -> None:
    """Wipe moto's state, then re-apply the start-up settings."""
    _post(app, "/moto-api/reset", {})
    configure(app)


def _post(app: WsgiApp, path: str, body: dict[str, Any]) -> int:
    """POST a JSON body to moto's control API in-process and return the status code."""
    from werkzeug.test import Client

    with MOTO_LOCK:
        response = Client(app).post(path, data=json.dumps(body), content_type="application/json")
    return response.status_code
