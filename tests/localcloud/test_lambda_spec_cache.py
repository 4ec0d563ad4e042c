"""A function's spec is read from moto once and re-read only after moto may have changed."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

from localcloud.config import DEFAULT_REGION, FAKE_ACCOUNT_ID
from localcloud.lambda_.functions import resolve
from localcloud.motogateway import MotoGateway

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ],
}


def _function(gateway: MotoGateway) -> str:
    """A new zip function in moto; its name."""
    name = f"spec-{uuid.uuid4().hex[:8]}"
    role = gateway.call(
        "iam",
        "CreateRole",
        {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(TRUST)},
        DEFAULT_REGION,
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    gateway.call(
        "lambda",
        "CreateFunction",
        {
            "FunctionName": name,
            "Runtime": "python3.12",
            "Role": role,
            "Handler": "app.handler",
            "Code": {"ZipFile": package.getvalue()},
        },
        DEFAULT_REGION,
    )
    return name


def test_spec_is_reused_until_moto_changes_and_then_read_again(tmp_path):
    gateway = MotoGateway()
    name = _function(gateway)

    def spec():
        return resolve(gateway, tmp_path, DEFAULT_REGION, FAKE_ACCOUNT_ID, name, None)

    first = spec()
    assert spec() is first  # nothing changed: the cached spec, moto not read

    gateway.call(
        "lambda",
        "UpdateFunctionConfiguration",
        {"FunctionName": name, "Timeout": 9},
        DEFAULT_REGION,
    )
    updated = spec()
    assert updated.timeout_s == 9 and updated.fingerprint != first.fingerprint

    # A change made on moto's backend directly (writable access) is seen as well.
    with gateway.backend("lambda", FAKE_ACCOUNT_ID, DEFAULT_REGION) as functions:
        functions.get_function(name).reserved_concurrency = 0
    assert spec().reserved_concurrency == 0

    # Access that promised to change nothing is not followed by a read: the spec is cached
    # (here the promise is broken on purpose, to show that moto is not read again) ...
    current = spec()
    with gateway.backend("lambda", FAKE_ACCOUNT_ID, DEFAULT_REGION, read_only=True) as functions:
        functions.get_function(name).reserved_concurrency = 3
    assert spec() is current and current.reserved_concurrency == 0
    # ... until the next call that may change moto.
    gateway.call("lambda", "GetFunction", {"FunctionName": name}, DEFAULT_REGION)
    assert spec().reserved_concurrency == 3
