"""Lambda helpers without a cloud: REPORT lines, zip hashing, validation, IAM, invoke."""

from __future__ import annotations

import base64
import io
import json
import math
import os
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from helpers import iam, lambda_, logs

AWS_COLD = (
    "REPORT RequestId: 6f2d0c1e-1111-2222-3333-444455556666\tDuration: 3.01 ms\t"
    "Billed Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 36 MB\t"
    "Init Duration: 110.10 ms\t\n"
)
AWS_WARM = (
    "REPORT RequestId: 7a\tDuration: 1.52 ms\tBilled Duration: 2 ms\tMemory Size: 512 MB\t"
    "Max Memory Used: 40 MB\t\n"
)
RIE_COLD = (
    "REPORT RequestId: 8b\tInit Duration: 0.23 ms\tDuration: 70.89 ms\tBilled Duration: 71 ms\t"
    "Memory Size: 3008 MB\tMax Memory Used: 3008 MB\t"
)


class FakeLab:
    """Just what the pure helpers use of a lab: region, account and one client."""

    region = "eu-west-1"
    account_id = "123456789012"

    def __init__(self, client=None) -> None:
        self._client = client
        self.calls: list[str] = []

    def name(self, pattern: str, name: str, max_length: int = 64) -> str:
        return f"scd-dev-{pattern}-{name}"

    def client(self, service: str):
        self.calls.append(service)
        if self._client is None:
            raise AssertionError(f"no AWS call expected, got a {service} client request")
        return self._client


# --- REPORT lines --------------------------------------------------------------------------


def test_cold_report_line_in_aws_order():
    row = logs.parse_report_line(AWS_COLD)
    assert row == {
        "request_id": "6f2d0c1e-1111-2222-3333-444455556666",
        "duration_ms": 3.01,
        "billed_ms": 4.0,
        "memory_mb": 128.0,
        "max_memory_mb": 36.0,
        "init_ms": 110.10,
        "cold": True,
    }


def test_warm_report_line_has_no_init_duration():
    row = logs.parse_report_line(AWS_WARM)
    assert row["cold"] is False and math.isnan(row["init_ms"])
    assert (row["duration_ms"], row["billed_ms"], row["max_memory_mb"]) == (1.52, 2.0, 40.0)


def test_rie_order_puts_init_duration_first_and_is_parsed_by_key():
    row = logs.parse_report_line(RIE_COLD)
    assert row["cold"] is True
    assert (row["init_ms"], row["duration_ms"], row["billed_ms"]) == (0.23, 70.89, 71.0)
    assert (row["memory_mb"], row["max_memory_mb"]) == (3008.0, 3008.0)


def test_report_fields_separated_by_spaces_still_parse():
    row = logs.parse_report_line(AWS_COLD.replace("\t", " "))
    assert (row["duration_ms"], row["billed_ms"], row["init_ms"]) == (3.01, 4.0, 110.10)


@pytest.mark.parametrize(
    "line",
    ["START RequestId: a Version: $LATEST", "END RequestId: a", "hello REPORT", "REPORT x"],
)
def test_other_lines_are_not_reports(line):
    assert logs.parse_report_line(line) is None


def test_report_columns_are_the_documented_ones():
    assert lambda_.REPORT_COLUMNS == [
        "request_id",
        "duration_ms",
        "billed_ms",
        "memory_mb",
        "max_memory_mb",
        "init_ms",
        "cold",
        "timestamp",
    ]


# --- zip packaging ---------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_zip_is_deterministic_across_mtimes_order_and_caches(tmp_path):
    files = {"app.py": "def handler(e, c):\n    return 1\n", "lib/util.py": "X = 1\n"}
    a = _tree(tmp_path / "a", files)
    b = _tree(tmp_path / "b", dict(reversed(files.items())))
    os.utime(b / "app.py", (1_000_000, 1_000_000))
    _tree(b, {"__pycache__/app.cpython-312.pyc": "junk", "lib/x.pyc": "junk", ".DS_Store": ""})
    first = lambda_.package_zip(a)
    assert first == lambda_.package_zip(a)
    assert lambda_.code_sha256(first) == lambda_.code_sha256(lambda_.package_zip(b))


def test_zip_hash_changes_with_content(tmp_path):
    folder = _tree(tmp_path, {"app.py": "A = 1\n"})
    before = lambda_.code_sha256(lambda_.package_zip(folder))
    (folder / "app.py").write_text("A = 2\n")
    assert lambda_.code_sha256(lambda_.package_zip(folder)) != before


def test_code_sha256_is_lambdas_base64_digest():
    assert lambda_.code_sha256(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


# --- input validation --------------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/scd-dev-16-fn"


def _ensure(tmp_path: Path, **overrides):
    folder = _tree(tmp_path / "code", {"app.py": "def handler(e, c):\n    return 1\n"})
    arguments = {"role_arn": ROLE, "zip_dir": folder, "handler": "app.handler", **overrides}
    return lambda_.ensure_function(FakeLab(), "16", "fn", **arguments)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_uri": "repo:v1"}, "exactly one of image_uri"),
        ({"zip_dir": None}, "exactly one of image_uri"),
        ({"memory_mb": 64}, "memory_mb must be between 128 and 10240 MB, not 64"),
        ({"memory_mb": 10241}, "memory_mb must be between 128 and 10240 MB, not 10241"),
        ({"timeout_s": 0}, "timeout_s must be between 1 and 900 seconds, not 0"),
        ({"timeout_s": 901}, "timeout_s must be between 1 and 900 seconds, not 901"),
        ({"handler": None}, "needs handler='<module>.<function>'"),
        ({"handler": "app"}, "needs handler='<module>.<function>'"),
        ({"handler": "missing.handler"}, "needs missing.py in"),
        ({"role_arn": {"Arn": ROLE}}, "role_arn must be a role ARN string"),
        ({"environment": {"PORT": 5432}}, "must be strings"),
    ],
)
def test_invalid_arguments_fail_before_any_aws_call(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _ensure(tmp_path, **overrides)


def test_image_functions_take_no_handler():
    with pytest.raises(ValueError, match="handler is for zip functions"):
        lambda_.ensure_function(
            FakeLab(), "16", "fn", role_arn=ROLE, image_uri="repo:v1", handler="app.handler"
        )


def test_zip_dir_must_exist(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        _ensure(tmp_path, zip_dir=tmp_path / "nope")


# --- IAM statements ---------------------------------------------------------------------------


def test_logging_statements_are_least_privilege():
    statements = iam.lambda_logging_statements(FakeLab(), "scd-dev-16-fn")
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/scd-dev-16-fn:*"
    assert statements == [
        {
            "Sid": "OwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": group,
        }
    ]
    for statement in statements:
        actions = statement["Action"]
        assert all("*" not in action for action in actions)
        assert statement["Resource"].startswith(
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/scd-dev-16-fn"
        )


def test_trust_policy_names_one_service():
    assert iam.trust_policy("lambda.amazonaws.com")["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_statements_without_required_keys_are_refused_before_any_call():
    with pytest.raises(ValueError, match="statement 0 has no Resource"):
        iam.ensure_role(
            FakeLab(), "16", "fn", service="lambda", statements=[{"Effect": "Allow", "Action": []}]
        )


# --- invoke --------------------------------------------------------------------------------


@pytest.fixture
def stubbed():
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield FakeLab(client), stubber


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_invoke_wraps_a_successful_response(stubbed):
    lab, stubber = stubbed
    log = "START RequestId: r\nREPORT RequestId: r\tDuration: 1 ms\t\n"
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "Payload": _body(b'{"ok": true}'),
            "LogResult": base64.b64encode(log.encode()).decode(),
            "ExecutedVersion": "$LATEST",
        },
        {
            "FunctionName": "fn",
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": json.dumps({"id": 1}).encode(),
        },
    )
    result = lambda_.invoke(lab, "fn", {"id": 1}, tail_logs=True)
    assert (result.status_code, result.payload, result.function_error) == (200, {"ok": True}, None)
    assert result.log_tail == log and result.executed_version == "$LATEST"
    assert result.ok and result.client_ms >= 0


def test_invoke_returns_function_errors_instead_of_raising(stubbed):
    lab, stubber = stubbed
    error = {"errorMessage": "boom", "errorType": "Exception", "stackTrace": []}
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": _body(json.dumps(error).encode()),
        },
        {"FunctionName": "fn", "InvocationType": "RequestResponse", "LogType": "None"},
    )
    result = lambda_.invoke(lab, "fn")
    assert result.function_error == "Unhandled" and result.payload == error
    assert result.log_tail is None and not result.ok


def test_invoke_event_has_no_payload_and_text_bodies_stay_text(stubbed):
    lab, stubber = stubbed
    stubber.add_response("invoke", {"StatusCode": 202, "Payload": _body(b"")})
    stubber.add_response("invoke", {"StatusCode": 200, "Payload": _body(b"plain text")})
    assert lambda_.invoke(lab, "fn", {}, invocation_type="Event").payload is None
    assert lambda_.invoke(lab, "fn").payload == "plain text"


def test_invoke_service_errors_raise(stubbed):
    lab, stubber = stubbed
    stubber.add_client_error("invoke", "ResourceNotFoundException", http_status_code=404)
    with pytest.raises(lab._client.exceptions.ResourceNotFoundException):
        lambda_.invoke(lab, "missing")


def test_invoke_refuses_unknown_invocation_types():
    with pytest.raises(ValueError, match="invocation_type must be one of"):
        lambda_.invoke(FakeLab(), "fn", invocation_type="Async")
