"""moto's WSGI app inside the daemon, configured as the local cloud needs (gateway-private).

moto keeps the state of IAM, EC2, ECR, Lambda, ECS, ELBv2, API Gateway, RDS, Secrets Manager,
DynamoDB and Logs. It runs inside the daemon's process, behind the edge. Settings applied at
start, through moto's own control API:

- AWS-managed IAM policies are loaded, so `AWSLambdaBasicExecutionRole` & co. can be attached;
- Lambda runs in moto's no-Docker mode (our Lambda provider executes code; this must be set
  before any function exists, because switching replaces moto's Lambda backend);
- ECS tasks do not drift towards STOPPED on every `describe_tasks` call;
- werkzeug's per-request access log is silenced;
- two lookups moto repeats on every request are cached (`speedups.py`).
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
    from . import ec2_rules, speedups

    speedups.install()  # first: it keeps a module out that moto's imports would load
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    ec2_rules.install()
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


def call(
    app: WsgiApp, service: str, operation: str, params: dict[str, Any], region: str
) -> dict[str, Any]:
    """Call one moto operation in-process, as boto3 would, and return the parsed result.

    Providers use this to let moto do the bookkeeping and then correct what it gets wrong
    (e.g. the RDS provider patches endpoints). Errors are raised as ServiceError.
    """
    from botocore.awsrequest import prepare_request_dict
    from botocore.parsers import create_parser
    from botocore.serialize import create_serializer
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    from ..protocols import ServiceError, service_model

    model = service_model(service)
    operation_model = model.operation_model(operation)
    protocol = _moto_protocol(model)
    request = create_serializer(protocol, include_validation=True).serialize_to_request(
        params, operation_model
    )
    prepare_request_dict(request, endpoint_url="http://localhost")
    body = request["body"]
    if isinstance(body, dict):  # the query protocol's form fields
        from urllib.parse import urlencode

        body = urlencode(body, doseq=True)
    headers = dict(request["headers"])
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential=internal/20200101/{region}/{model.signing_name}/"
        "aws4_request, SignedHeaders=host, Signature=0"
    )
    if protocol == "query":
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    environ = EnvironBuilder(
        path=request["url_path"].split("?")[0],
        query_string=request["url_path"].partition("?")[2] or None,
        method=request["method"],
        headers=headers,
        data=body.encode() if isinstance(body, str) else body,
    ).get_environ()
    with MOTO_LOCK:
        app_iter, status, response_headers = run_wsgi_app(app, environ, buffered=True)
        payload = b"".join(app_iter)
    status_code = int(status.split()[0])
    parsed = create_parser(protocol).parse(
        {"status_code": status_code, "headers": dict(response_headers), "body": payload},
        operation_model.output_shape,
    )
    if status_code >= 300:
        error = parsed.get("Error", {})
        raise ServiceError(
            error.get("Code", "InternalFailure"), error.get("Message", ""), status_code
        )
    parsed.pop("ResponseMetadata", None)
    return parsed


def preserve_header_names(environ: dict[str, Any]) -> None:
    """Keep S3 metadata headers with underscores, as moto's own request handler does.

    WSGI servers drop underscored header names (`X_Foo` would spoof `X-Foo`); moto reads
    them under its own environ key. The edge's server lists the headers as sent.
    """
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    sent = environ.get("localcloud.headers")
    if sent is None or PRESERVED_HEADER_NAMES_ENVIRON_KEY in environ:
        return
    dashed = {environ_key_for_header(name) for name, _ in sent if "_" not in name}
    names: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in sent:
        key = environ_key_for_header(name)
        if should_preserve_original_header_name(name) and key not in dashed:
            names.setdefault(key, name)
            values.setdefault(key, []).append(value)
    for key, key_values in values.items():
        environ[key] = ",".join(key_values)
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = names


def _moto_protocol(model: Any) -> str:
    """The service's protocol that moto answers: botocore may prefer CBOR, moto speaks JSON."""
    offered = model.metadata.get("protocols") or [model.protocol]
    return next((p for p in offered if p != "smithy-rpc-v2-cbor"), model.protocol)


def _post(app: WsgiApp, path: str, body: dict[str, Any]) -> int:
    """POST a JSON body to moto's control API in-process and return the status code."""
    from werkzeug.test import Client

    with MOTO_LOCK:
        response = Client(app).post(path, data=json.dumps(body), content_type="application/json")
    return response.status_code
