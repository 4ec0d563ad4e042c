"""The lab on the live local cloud: connect, get-or-create, teardown, the AWS preflight."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

import helpers


@pytest.mark.parametrize("backend", ["gcp", "AWS"])
def test_connect_refuses_unknown_backends(backend):
    with pytest.raises(ValueError, match="BACKEND must be one of"):
        helpers.connect(backend)


def test_ensure_is_idempotent_and_teardown_is_safe_twice(lab, capsys):
    first = helpers.dynamodb.ensure_table(lab, "00", "items")
    second = helpers.dynamodb.ensure_table(lab, "00", "items")
    assert first["TableName"] == second["TableName"] == "scd-pytest-00-items"
    tags = lab.client("dynamodb").list_tags_of_resource(ResourceArn=first["TableArn"])["Tags"]
    assert {"Key": "run_id", "Value": "pytest"} in tags
    found = helpers.cleanup.find_resources(lab, pattern="00")
    assert [r.identifier for r in found] == ["scd-pytest-00-items"]

    rows = helpers.cleanup.teardown(lab, pattern="00")
    assert rows == [
        {
            "kind": "dynamodb table",
            "id": "scd-pytest-00-items",
            "pattern": "00",
            "run_id": "pytest",
            "result": "deleted",
        }
    ]
    assert helpers.cleanup.teardown(lab, pattern="00") == []
    assert "nothing to delete" in capsys.readouterr().out
    assert helpers.cleanup.find_resources(lab, all_runs=True) == []


def test_aws_preflight_names_what_to_do(cloud):
    """The aws checks, pointed at the local cloud's STS: consent and Docker fail with fixes."""
    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    aws_lab = helpers.Lab(
        "aws", "us-east-1", "pytest", session, cloud.endpoint, helpers.lab.Ledger(Path(os.devnull))
    )
    with pytest.raises(helpers.preflight.PreflightError) as raised:
        helpers.preflight.run(aws_lab, consent_to_costs=False, needs_docker=True, quiet=True)
    message = str(raised.value)
    assert "cost consent: read the cost table above, then set CONSENT_TO_COSTS = True" in message
    assert "docker:" in message and "credentials" not in message
    checks = helpers.preflight.run(aws_lab, consent_to_costs=True, quiet=True)
    assert {c.check: c.ok for c in checks} == {
        "python": True,
        "credentials": True,
        "region": True,
        "cost consent": True,
    }
    assert "123456789012" not in " ".join(c.detail for c in checks)  # account ids never shown
