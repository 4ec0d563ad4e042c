"""IAM, Lambda and log helpers on the live local cloud: get-or-create, updates, teardown.

What the helpers create and change is checked here; what the local cloud does when a
function is invoked is tests/localcloud/test_lambda_invoke.py's subject.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import helpers
from helpers import iam, lambda_

PATTERN = "16"
HANDLER = "def handler(event, context):\n    return {'ok': True, 'version': VERSION}\n"


@pytest.fixture
def lab16(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-16 resources are torn down after the test, even when it fails."""
    yield lab
    helpers.cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def _unique(prefix: str) -> str:
    """A short name of its own per test, so tests never see each other's resources."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _code(folder: Path, version: int) -> Path:
    """A one-file handler folder."""
    folder.mkdir(exist_ok=True)
    (folder / "app.py").write_text(f"VERSION = {version}\n\n" + HANDLER)
    return folder


def _role(lab: helpers.Lab, name: str) -> dict:
    """A Lambda execution role for a function of the same name."""
    statements = iam.lambda_logging_statements(lab, lab.name(PATTERN, name))
    return iam.ensure_role(lab, PATTERN, name, service="lambda", statements=statements)


def test_ensure_role_is_idempotent_with_exact_policy_and_tags(lab16):
    name = _unique("role")
    statements = iam.lambda_logging_statements(lab16, lab16.name(PATTERN, name))
    first = iam.ensure_role(lab16, PATTERN, name, service="lambda", statements=statements)
    second = iam.ensure_role(
        lab16, PATTERN, name, service="lambda.amazonaws.com", statements=statements
    )
    assert first["Arn"] == second["Arn"]
    assert first["RoleName"] == f"scd-pytest-16-{name}"
    client = lab16.client("iam")
    trust = second["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert iam.inline_policy(lab16, first["RoleName"]) == iam.policy_document(statements)
    assert client.list_role_policies(RoleName=first["RoleName"])["PolicyNames"] == [
        iam.INLINE_POLICY
    ]
    tags = {t["Key"]: t["Value"] for t in client.list_role_tags(RoleName=first["RoleName"])["Tags"]}
    assert tags == lab16.tags(PATTERN)

    # Re-running with other statements replaces the policy rather than adding to it.
    narrower = [{**statements[0], "Action": ["logs:PutLogEvents"]}]
    iam.ensure_role(lab16, PATTERN, name, service="lambda", statements=narrower)
    assert iam.inline_policy(lab16, first["RoleName"])["Statement"] == narrower


def test_managed_policies_are_attached_and_narrowed_on_rerun(lab16):
    name = _unique("role")
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.ensure_role(
        lab16, PATTERN, name, service="lambda", statements=[], managed_policy_arns=[basic]
    )
    client = lab16.client("iam")
    role_name = lab16.name(PATTERN, name)
    attached = client.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [basic]
    assert iam.inline_policy(lab16, role_name) is None  # no statements: no inline policy
    iam.ensure_role(lab16, PATTERN, name, service="lambda", statements=[])
    assert client.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []


def test_zip_function_is_idempotent_and_updates_only_what_changed(lab16, tmp_path):
    name = _unique("fn")
    role = _role(lab16, name)
    folder = _code(tmp_path / "code", version=1)
    first = lambda_.ensure_function(
        lab16, PATTERN, name, role_arn=role["Arn"], zip_dir=folder, handler="app.handler"
    )
    assert first["FunctionName"] == f"scd-pytest-16-{name}"
    assert (first["PackageType"], first["MemorySize"], first["Timeout"]) == ("Zip", 512, 30)
    assert first["CodeSha256"] == lambda_.code_sha256(lambda_.package_zip(folder))
    tags = lab16.client("lambda").get_function(FunctionName=first["FunctionName"])["Tags"]
    assert tags == lab16.tags(PATTERN)

    entries = _ledger_actions(lab16, first["FunctionName"])
    calls = _record_calls(lab16.client("lambda"))
    second = lambda_.ensure_function(
        lab16, PATTERN, name, role_arn=role["Arn"], zip_dir=folder, handler="app.handler"
    )
    assert second["CodeSha256"] == first["CodeSha256"]
    assert "GetFunction" in calls
    assert not [c for c in calls if c.startswith(("Update", "Create"))]  # nothing was updated
    assert _ledger_actions(lab16, first["FunctionName"]) == entries

    _code(folder, version=2)
    third = lambda_.ensure_function(
        lab16, PATTERN, name, role_arn=role["Arn"], zip_dir=folder, handler="app.handler"
    )
    assert third["CodeSha256"] != first["CodeSha256"]
    assert third["CodeSha256"] == lambda_.code_sha256(lambda_.package_zip(folder))
    assert third["MemorySize"] == 512
    assert _ledger_actions(lab16, first["FunctionName"])[len(entries) :] == ["updated code"]

    fourth = lambda_.ensure_function(
        lab16,
        PATTERN,
        name,
        role_arn=role["Arn"],
        zip_dir=folder,
        handler="app.handler",
        memory_mb=1024,
        environment={"GREETING": "hello"},
    )
    assert fourth["CodeSha256"] == third["CodeSha256"]
    assert fourth["MemorySize"] == 1024
    assert fourth["Environment"]["Variables"] == {"GREETING": "hello"}
    assert _ledger_actions(lab16, first["FunctionName"])[len(entries) :] == [
        "updated code",
        "updated configuration",
    ]


def test_image_function_with_any_image_uri(lab16, tmp_path):
    name = _unique("img")
    role = _role(lab16, name)
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scd-pytest-16-repo:v1"
    created = lambda_.ensure_function(lab16, PATTERN, name, role_arn=role["Arn"], image_uri=uri)
    assert created["PackageType"] == "Image"
    assert (created["MemorySize"], created["Timeout"]) == (512, 30)
    client = lab16.client("lambda")
    assert client.get_function(FunctionName=created["FunctionName"])["Code"]["ImageUri"] == uri
    calls = _record_calls(client)
    lambda_.ensure_function(lab16, PATTERN, name, role_arn=role["Arn"], image_uri=uri)
    assert not [c for c in calls if c.startswith(("Update", "Create"))]
    v2 = uri.replace(":v1", ":v2")
    lambda_.ensure_function(lab16, PATTERN, name, role_arn=role["Arn"], image_uri=v2)
    assert client.get_function(FunctionName=created["FunctionName"])["Code"]["ImageUri"] == v2
    with pytest.raises(ValueError, match="cannot turn it into a Zip function"):
        lambda_.ensure_function(
            lab16,
            PATTERN,
            name,
            role_arn=role["Arn"],
            zip_dir=_code(tmp_path / "c", 1),
            handler="app.handler",
        )


def test_missing_role_fails_fast_with_a_clear_message(lab16, tmp_path):
    folder = _code(tmp_path / "code", version=1)
    ghost = f"arn:aws:iam::{lab16.account_id}:role/scd-pytest-16-{_unique('ghost')}"
    with pytest.raises(ValueError, match="does not exist: create it first"):
        lambda_.ensure_function(
            lab16, PATTERN, _unique("fn"), role_arn=ghost, zip_dir=folder, handler="app.handler"
        )


def test_teardown_deletes_function_role_and_log_group_then_finds_nothing(lab16, tmp_path):
    name = _unique("fn")
    role = _role(lab16, name)
    function = lambda_.ensure_function(
        lab16,
        PATTERN,
        name,
        role_arn=role["Arn"],
        zip_dir=_code(tmp_path / "code", 1),
        handler="app.handler",
    )
    group = helpers.logs.lambda_group(function["FunctionName"])
    logs = lab16.client("logs")
    logs.create_log_group(logGroupName=group)  # the provider will do this on invoke
    logs.create_log_stream(logGroupName=group, logStreamName="2026/01/01/[$LATEST]abc")
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/01/01/[$LATEST]abc",
        logEvents=[{"timestamp": _now_ms(), "message": "hello from the handler\n"}],
    )
    assert helpers.logs.tail(lab16, group) == ["hello from the handler"]

    found = {(r.kind, r.identifier) for r in helpers.cleanup.find_resources(lab16, PATTERN)}
    assert found == {
        ("lambda function", function["FunctionName"]),
        ("iam role", role["RoleName"]),
        ("log group", group),
    }
    rows = helpers.cleanup.teardown(lab16, pattern=PATTERN, quiet=True)
    assert [(r["kind"], r["result"]) for r in rows] == [
        ("lambda function", "deleted"),
        ("log group", "deleted"),
        ("iam role", "deleted"),
    ]
    assert helpers.cleanup.teardown(lab16, pattern=PATTERN, quiet=True) == []
    assert helpers.logs.tail(lab16, group) == []


def test_report_lines_reads_the_function_log_group(lab16):
    name = lab16.name(PATTERN, _unique("fn"))
    group = helpers.logs.lambda_group(name)
    logs = lab16.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = _now_ms()
    lines = [
        "START RequestId: a Version: $LATEST\n",
        "REPORT RequestId: a\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 36 MB\tInit Duration: 110.10 ms\t\n",
        "REPORT RequestId: b\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 37 MB\t\n",
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )
    frame = lambda_.report_lines(lab16, name)
    assert list(frame["request_id"]) == ["a", "b"]
    assert list(frame["cold"]) == [True, False]
    assert frame["init_ms"].iloc[0] == 110.10
    assert lambda_.report_lines(lab16, lab16.name(PATTERN, "never-invoked")).empty


def _ledger_actions(lab: helpers.Lab, identifier: str) -> list[str]:
    """What the ledger recorded for one resource, oldest first."""
    return [e["action"] for e in lab.ledger.entries() if e["id"] == identifier]


def _record_calls(client: Any) -> list[str]:
    """The operation names a client calls from now on (for "nothing was updated" checks)."""
    calls: list[str] = []
    client.meta.events.register(
        "before-call.lambda.*",
        lambda model, **_: calls.append(model.name),
        unique_id=str(id(calls)),
    )
    return calls


def _now_ms() -> int:
    """Now, in CloudWatch Logs' milliseconds."""
    return int(time.time() * 1000)
