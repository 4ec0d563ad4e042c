"""`MotoGateway`: moto's WSGI app, its lock, in-process calls and locked backend access."""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..protocols import ServiceError
from . import app as moto_app
from .app import MOTO_LOCK, WsgiApp
from .dynamodb import item_operation
from .logs import LogsWriter


def _backend(service: str, account: str, region: str) -> Any:
    """moto's backend of a service for one account and region (imported on first use)."""
    if service == "ecs":
        from moto.ecs.models import ecs_backends

        return ecs_backends[account][region]
    if service == "ec2":
        from moto.ec2.models import ec2_backends

        return ec2_backends[account][region]
    if service == "ecr":
        from moto.ecr.models import ecr_backends

        return ecr_backends[account][region]
    if service == "logs":
        from moto.logs.models import logs_backends

        return logs_backends[account][region]
    if service == "iam":  # global: one backend per account
        from moto.iam.models import iam_backends

        return iam_backends[account]["global"]
    if service == "secretsmanager":
        from moto.secretsmanager.models import secretsmanager_backends

        return secretsmanager_backends[account][region]
    if service == "dynamodb":
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[account][region]
    if service == "apigatewayv2":
        from moto.apigatewayv2.models import apigatewayv2_backends

        return apigatewayv2_backends[account][region]
    if service == "lambda":  # the no-Docker backend that app.py configures
        from moto.awslambda.utils import get_backend

        return get_backend(account, region)
    raise KeyError(f"no moto backend access for {service!r}: add it to motogateway.gateway")


def _utcnow() -> datetime.datetime:
    """Now as moto stamps its records: naive UTC."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class MotoGateway:
    """moto in the daemon's process, reached only through this object."""

    def __init__(self) -> None:
        self.app: WsgiApp = moto_app.create_moto_app()
        self.logs = LogsWriter(self.backend)
        # Counts the calls that may have changed moto's Lambda state (any serve or call, a
        # reset, writable Lambda backend access): derived values, such as a function's
        # spec, stay valid while it is unchanged instead of being re-read on every invoke.
        self.generation = 0

    def call(
        self, service: str, operation: str, params: dict[str, Any], region: str
    ) -> dict[str, Any]:
        """Run one moto operation in-process, as boto3 would; errors raise ServiceError."""
        try:
            return moto_app.call(self.app, service, operation, params, region)
        finally:
            self._changed()

    def dynamodb_item(
        self, operation: str, params: dict[str, Any], account: str, region: str
    ) -> dict[str, Any]:
        """A DynamoDB item operation (ITEM_OPERATIONS) answered by moto's handler, in-process."""
        with MOTO_LOCK:
            return item_operation(operation, params, account, region)

    def secret_value(self, account: str, region: str, secret_id: str) -> dict[str, Any]:
        """GetSecretValue of the current version, from moto's backend without an HTTP round trip."""
        # The Data API reads its secret on every statement: the round trip was half its time.
        with MOTO_LOCK:
            try:
                return _backend("secretsmanager", account, region).get_secret_value(
                    secret_id, None, None
                )
            except Exception as error:  # moto's errors carry AWS's code, message and status
                code = getattr(error, "error_type", None)
                if not code:
                    raise
                status = error.code if isinstance(getattr(error, "code", None), int) else 400
                raise ServiceError(code, getattr(error, "message", str(error)), status) from None

    def role_age(self, account: str, role_arn: str) -> float | None:
        """Seconds since the IAM role was created, or None if there is no such role."""
        with MOTO_LOCK:
            for role in _backend("iam", account, "global").get_roles():
                if role.arn == role_arn:
                    return (_utcnow() - role.create_date).total_seconds()
        return None

    def ensure_service_linked_role(self, account: str, principal: str, name: str) -> float:
        """Seconds since the service's service-linked role was created (0: created now)."""
        path = f"/aws-service-role/{principal}/"
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": principal}}
            ],
        }
        with MOTO_LOCK:
            iam = _backend("iam", account, "global")
            for role in iam.get_roles():
                if role.path == path:
                    return (_utcnow() - role.create_date).total_seconds()
            # Not moto's create_service_linked_role: it spells ECS's role AWSServiceRoleForecs.
            iam.create_role(
                name, json.dumps(trust), path, None, "", [], "3600", linked_service=principal
            )
            return 0.0

    def serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Let moto answer a raw HTTP request (the edge's fall-through)."""
        moto_app.preserve_header_names(environ)
        # Queued log lines first: a CloudWatch Logs reader sees an invoke's lines at once.
        self.logs.flush()
        with MOTO_LOCK:
            try:
                # Consume moto's response inside the lock: its body may be generated lazily.
                return [b"".join(self.app(environ, start_response))]
            finally:
                self.generation += 1

    @contextlib.contextmanager
    def backend(
        self, service: str, account: str, region: str, *, read_only: bool = False
    ) -> Iterator[Any]:
        """One service's moto backend, held under the moto lock for the `with` block.

        `read_only` promises that the block changes nothing (see `generation`).
        """
        with MOTO_LOCK:
            try:
                yield _backend(service, account, region)
            finally:
                if service == "lambda" and not read_only:
                    self.generation += 1

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The moto lock alone, for reads that span several backends."""
        with MOTO_LOCK:
            yield

    def reset(self) -> None:
        """Wipe moto's state, then re-apply the course's start-up settings."""
        self.logs.flush()  # queued lines belong to the state being wiped
        try:
            moto_app.reset(self.app)
        finally:
            self._changed()

    def _changed(self) -> None:
        with MOTO_LOCK:
            self.generation += 1
